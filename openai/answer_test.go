package openai

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

func TestDoErrorStatuses(t *testing.T) {
	const html500 = `<!DOCTYPE html><html><head><title>500 Internal Server Error</title>
<style>body { font-family: sans-serif }</style><script>var x = "<b>";</script></head>
<body><!-- generated --><center><h1>500   Internal
Server Error</h1></center><hr><center>nginx/1.25.3 &amp; friends</center></body></html>`
	type want struct {
		status     int
		typ, code  string
		message    string
		retryAfter time.Duration
		body       string // "" means the upstream's body, unchanged
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    want
	}{
		{
			name: "429 with retry-after-ms",
			handler: answer(429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
				"Retry-After-Ms", "1500.5", "Retry-After", "7"),
			want: want{status: 429, typ: "requests", code: "rate_limit_exceeded", message: "Rate limit reached",
				retryAfter: 1500*time.Millisecond + 500*time.Microsecond},
		},
		{
			name:    "429 with retry-after seconds",
			handler: answer(429, `{"error":{"message":"slow down","type":"requests","code":429}}`, "Retry-After", "2.5"),
			want:    want{status: 429, typ: "requests", code: "429", message: "slow down", retryAfter: 2500 * time.Millisecond},
		},
		{
			name: "429 with retry-after HTTP date",
			handler: answer(429, `{"error":"too many requests"}`,
				"Retry-After", fixedNow.Add(42*time.Second).Format(http.TimeFormat)),
			want: want{status: 429, message: "too many requests", retryAfter: 42 * time.Second},
		},
		{
			name:    "429 without retry-after",
			handler: answer(429, `{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}`),
			want:    want{status: 429, typ: "insufficient_quota", code: "insufficient_quota", message: "quota"},
		},
		{
			name:    "429 with garbage retry-after",
			handler: answer(429, `{"error":"x"}`, "Retry-After-Ms", "soon", "Retry-After", "-5"),
			want:    want{status: 429, message: "x"},
		},
		{
			name:    "500 HTML page",
			handler: answer(500, html500, "Content-Type", "text/html"),
			want: want{status: 500, message: "Internal Server Error: 500 Internal Server Error 500 Internal Server Error nginx/1.25.3 & friends",
				body: `{"error":{"message":"Internal Server Error: 500 Internal Server Error 500 Internal Server Error nginx/1.25.3 \u0026 friends","type":"upstream_error","param":null,"code":null}}`},
		},
		{
			name:    "502 text/plain",
			handler: answer(502, "upstream connect error or disconnect/reset before headers.\n", "Content-Type", "text/plain"),
			want: want{status: 502, message: "Bad Gateway: upstream connect error or disconnect/reset before headers.",
				body: `{"error":{"message":"Bad Gateway: upstream connect error or disconnect/reset before headers.","type":"upstream_error","param":null,"code":null}}`},
		},
		{
			name:    "503 empty body",
			handler: answer(503, "", "Retry-After", "3"),
			want: want{status: 503, message: "Service Unavailable", retryAfter: 3 * time.Second,
				body: `{"error":{"message":"Service Unavailable","type":"upstream_error","param":null,"code":null}}`},
		},
		{
			name:    "520 unknown status",
			handler: answer(520, "", "Content-Type", "text/html"),
			want: want{status: 520, message: "status 520",
				body: `{"error":{"message":"status 520","type":"upstream_error","param":null,"code":null}}`},
		},
		{
			name:    "401 OpenAI",
			handler: answer(401, `{"error":{"message":"Incorrect API key provided: sk-te***LEAK.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
			want:    want{status: 401, typ: "invalid_request_error", code: "invalid_api_key", message: "Incorrect API key provided: sk-te***LEAK."},
		},
		{
			name:    "numeric code at top level (Cloudflare-style)",
			handler: answer(400, `{"success":false,"errors":[{"code":1002,"message":"bad input"}],"messages":[]}`),
			want:    want{status: 400, code: "1002", message: "bad input"},
		},
		{
			name:    "message and code at top level",
			handler: answer(400, `{"message":"invalid temperature","code":40001}`),
			want:    want{status: 400, code: "40001", message: "invalid temperature"},
		},
		{
			name:    "vLLM error object",
			handler: answer(400, `{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}`),
			want:    want{status: 400, typ: "BadRequestError", code: "400", message: "max_tokens is too large"},
		},
		{
			name:    "FastAPI detail",
			handler: answer(422, `{"detail":[{"loc":["body","messages"],"msg":"field required","type":"value_error.missing"}]}`),
			want:    want{status: 422, typ: "value_error.missing", message: "field required"},
		},
		{
			name:    "Google array",
			handler: answer(400, `[{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}]`),
			want:    want{status: 400, typ: "INVALID_ARGUMENT", code: "400", message: "Invalid JSON payload"},
		},
		{
			name:    "JSON of no known shape",
			handler: answer(500, `{"oops":true}`),
			want:    want{status: 500, message: `Internal Server Error: {"oops":true}`},
		},
		{
			name:    "JSON with a text/html content type",
			handler: answer(500, `{"error":{"message":"boom"}}`, "Content-Type", "text/html"),
			want:    want{status: 500, message: "boom"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent string
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				rec := httptest.NewRecorder()
				tt.handler(rec, r)
				sent = rec.Body.String()
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
			})
			resp, err := do(t, newClient(t, srv))
			ue := upstreamError(t, err)
			got := want{ue.StatusCode, ue.Type, ue.Code, ue.Message, ue.RetryAfter, string(resp.Body)}
			w := tt.want
			if w.body == "" {
				w.body = sent
			}
			if diff := cmp.Diff(w, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if resp.StatusCode != tt.want.status {
				t.Errorf("Response.StatusCode = %d, want %d", resp.StatusCode, tt.want.status)
			}
			if !json.Valid(resp.Body) {
				t.Errorf("Response.Body is not valid JSON: %s", resp.Body)
			}
		})
	}
}

func TestDoModelNotFound(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    bool
	}{
		{"OpenAI", answer(404, `{"error":{"message":"The model `+"`gpt-9`"+` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`), true},
		{"vLLM", answer(404, `{"object":"error","message":"The model `+"`llama-3.1-8b`"+` does not exist.","type":"NotFoundError","param":null,"code":404}`), true},
		{"Ollama native", answer(404, `{"error":"model \"llama3.2\" not found, try pulling it first"}`), true},
		{"Ollama OpenAI layer", answer(404, `{"error":{"message":"model \"qwen3:8b\" not found, try pulling it first","type":"api_error","param":null,"code":null}}`), true},
		{"DeepSeek", answer(400, `{"error":{"message":"Model Not Exist","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`), true},
		{"Google", answer(404, `[{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}]`), true},
		{"Mistral", answer(400, `{"object":"error","message":"Invalid model: mistral-huge","type":"invalid_model","param":null,"code":"1500"}`), true},
		{"HTML 404 from a wrong base URL", answer(404, "<html><body><h1>404 Not Found</h1><p>The model page was not found</p></body></html>", "Content-Type", "text/html"), false},
		{"FastAPI 404 for a wrong path", answer(404, `{"detail":"Not Found"}`), false},
		{"plain 404", answer(404, "404 page not found\n", "Content-Type", "text/plain"), false},
		{"400 about something else", answer(400, `{"error":{"message":"'messages' is a required property","type":"invalid_request_error","param":null,"code":null}}`), false},
		{"500 that mentions a model", answer(500, `{"error":{"message":"model llama not found in cache, retry"}}`), false},
		{"403 with a model code", answer(403, `{"error":{"message":"no access","code":"model_not_found"}}`), true},
		{"Azure deployment", answer(404, `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := do(t, newClient(t, serve(t, tt.handler)))
			ue := upstreamError(t, err)
			if got := ue.Code == sluice.CodeModelNotFound; got != tt.want {
				t.Errorf("model not found = %v (code %q, message %q), want %v", got, ue.Code, ue.Message, tt.want)
			}
		})
	}
}

func TestDoInvalidSuccessBodies(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		message string
	}{
		{"truncated", answer(200, `{"id":"chatcmpl-1","choices":[{"message":{"content":"Hel`, "Content-Type", "application/json"),
			"200 answer is not valid JSON: truncated after 56 bytes"},
		{"not JSON", answer(200, "hello world", "Content-Type", "text/plain"),
			"200 answer is not valid JSON: invalid character 'h' looking for beginning of value; body: hello world"},
		{"HTML", answer(200, "<html><body>Please sign in</body></html>", "Content-Type", "text/html"),
			"200 answer is not valid JSON: invalid character '<' looking for beginning of value; body: Please sign in"},
		{"empty", answer(200, ""), "200 answer is not valid JSON: empty body"},
		{"no content", answer(204, ""), "204 answer is not valid JSON: empty body"},
		{"two values", answer(200, `{"a":1}{"b":2}`), "200 answer is not valid JSON: invalid character '{' after top-level value; body: {\"a\":1}{\"b\":2}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := do(t, newClient(t, serve(t, tt.handler)))
			ue := upstreamError(t, err)
			if resp == nil {
				t.Fatal("Response is nil, want the answer")
			}
			if ue.StatusCode != resp.StatusCode || ue.Code != sluice.CodeInvalidResponse || !ue.Retryable() {
				t.Errorf("error = %+v, want status %d, code %s, retryable", ue, resp.StatusCode, sluice.CodeInvalidResponse)
			}
			if ue.Message != tt.message {
				t.Errorf("Message = %q, want %q", ue.Message, tt.message)
			}
			if !json.Valid(resp.Body) {
				t.Errorf("Response.Body is not valid JSON: %s", resp.Body)
			}
		})
	}
}

func TestDoBodyOverLimit(t *testing.T) {
	big := `{"data":"` + strings.Repeat("x", 2000) + `"}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
	}{
		{"with Content-Length", answer(200, big), 200},
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, big[:1000])
			_ = http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, big[1000:])
		}, 200},
		{"error status", answer(500, big), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, serve(t, tt.handler), func(cfg *Config) { cfg.MaxBodyBytes = 1024 })
			resp, err := do(t, c)
			ue := upstreamError(t, err)
			if ue.StatusCode != tt.status || ue.Code != sluice.CodeInvalidResponse {
				t.Errorf("error = %+v, want status %d code %s", ue, tt.status, sluice.CodeInvalidResponse)
			}
			if resp == nil || !json.Valid(resp.Body) || len(resp.Body) > 1024 {
				t.Errorf("Response = %+v, want one with a short JSON error body", resp)
			}
		})
	}
	// Exactly at the limit is fine.
	c := newClient(t, serve(t, answer(200, big)), func(cfg *Config) { cfg.MaxBodyBytes = int64(len(big)) })
	if _, err := do(t, c); err != nil {
		t.Errorf("body of exactly MaxBodyBytes: %v", err)
	}
}

// TestDoErrorObjectIn200 takes a 2xx answer whose body is an error object for the error
// it is, not for an answer: gateways such as OpenRouter answer 200 with the provider's
// error, and a failed Responses answer carries its error in the body.
func TestDoErrorObjectIn200(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		status    int // UpstreamError.StatusCode; 0: not an error
		code      string
		retryable bool
		throttled bool
	}{
		{"OpenRouter provider error", `{"error":{"message":"Provider returned error","code":502,"metadata":{"provider_name":"X","raw":"upstream timeout"}},"user_id":"u1"}`,
			502, "502", true, false},
		{"OpenRouter rate limit", `{"error":{"message":"Rate limit exceeded: free-models-per-min","code":429}}`,
			429, "429", true, true},
		{"client error code", `{"error":{"message":"This endpoint's maximum context length is 8192 tokens","code":400}}`,
			400, "400", false, false},
		{"error string", `{"error":"model is overloaded"}`, 200, "", true, false},
		{"failed Responses answer", `{"id":"resp_1","object":"response","status":"failed","error":{"code":"server_error","message":"The model failed"},"output":[]}`,
			200, "server_error", true, false},
		{"Responses answer with error null", `{"id":"resp_1","object":"response","status":"completed","error":null,"output":[{"type":"message"}],"usage":{"input_tokens":3,"output_tokens":2}}`,
			0, "", false, false},
		{"chat answer with an empty error", `{"id":"c","object":"chat.completion","error":{},"choices":[{"index":0,"message":{"content":"hi"}}]}`,
			0, "", false, false},
		{"answer beside an error", `{"object":"chat.completion","error":{"message":"partial"},"choices":[{"index":0,"message":{"content":"hi"}}]}`,
			0, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := do(t, newClient(t, serve(t, answer(200, tt.body))))
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("error %v for a usable answer", err)
				}
				return
			}
			ue := upstreamError(t, err)
			if ue.StatusCode != tt.status || ue.Code != tt.code || ue.Retryable() != tt.retryable || ue.Throttled() != tt.throttled {
				t.Errorf("status %d code %q retryable %v throttled %v; want %d %q %v %v (%v)",
					ue.StatusCode, ue.Code, ue.Retryable(), ue.Throttled(), tt.status, tt.code, tt.retryable, tt.throttled, ue)
			}
			if resp == nil || string(resp.Body) != tt.body {
				t.Errorf("Response.Body %q, want the upstream's error body", resp.Body)
			}
		})
	}
}

// TestDoErrorCodeInStream reads a numeric code in a stream's error event as the status it
// stands for, as in a 200 whose body is an error object: a 429 sent inside a stream
// throttles (with the stream's Retry-After), a 400 is final, a 502 is retried. Both ways
// a stream is read: assembled from a whole body, and read as it comes (Config.Stream).
func TestDoErrorCodeInStream(t *testing.T) {
	tests := []struct {
		name      string
		event     string
		status    int
		retryable bool
		throttled bool
	}{
		{"rate limit", `data: {"error":{"message":"Rate limit exceeded","code":429}}`, 429, true, true},
		{"client error", `data: {"error":{"message":"context too long","code":400}}`, 400, false, false},
		{"provider error", `event: error` + "\n" + `data: {"error":{"message":"Provider returned error","code":502}}`, 502, true, false},
		{"word code", `data: {"error":{"message":"overloaded","code":"server_error"}}`, 200, true, false},
	}
	for _, tt := range tests {
		for _, streamed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, streamed), func(t *testing.T) {
				body := `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"}}]}` + "\n\n" + tt.event + "\n\n"
				srv := serve(t, answer(200, body, "Content-Type", "text/event-stream", "Retry-After", "3"))
				_, err := do(t, newClient(t, srv, func(c *Config) { c.Stream = streamed }))
				ue := upstreamError(t, err)
				if ue.StatusCode != tt.status || ue.Retryable() != tt.retryable || ue.Throttled() != tt.throttled {
					t.Errorf("status %d retryable %v throttled %v; want %d %v %v (%v)",
						ue.StatusCode, ue.Retryable(), ue.Throttled(), tt.status, tt.retryable, tt.throttled, ue)
				}
				if wantWait := tt.status != 200; (ue.RetryAfter == 3*time.Second) != wantWait {
					t.Errorf("RetryAfter %v, want the header's 3s only for a status code", ue.RetryAfter)
				}
			})
		}
	}
}
