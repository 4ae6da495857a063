package openai

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		name, body string
		want       errorInfo
	}{
		{"OpenAI", `{"error":{"message":"Invalid 'messages'","type":"invalid_request_error","param":"messages","code":null}}`,
			errorInfo{Type: "invalid_request_error", Message: "Invalid 'messages'"}},
		{"OpenAI string code", `{"error":{"message":"m","type":"t","code":"rate_limit_exceeded"}}`,
			errorInfo{Type: "t", Code: "rate_limit_exceeded", Message: "m"}},
		{"numeric code", `{"error":{"message":"m","code":429}}`, errorInfo{Code: "429", Message: "m"}},
		{"float code", `{"error":{"message":"m","code":1002.5}}`, errorInfo{Code: "1002.5", Message: "m"}},
		{"boolean code", `{"error":{"message":"m","code":true}}`, errorInfo{Code: "true", Message: "m"}},
		{"object code ignored", `{"error":{"message":"m","code":{"x":1}}}`, errorInfo{Message: "m"}},
		{"error string", `{"error":"model \"x\" not found"}`, errorInfo{Message: `model "x" not found`}},
		{"error string with code beside", `{"error":"busy","code":503}`, errorInfo{Code: "503", Message: "busy"}},
		{"message and code", `{"message":"bad","code":"E1"}`, errorInfo{Code: "E1", Message: "bad"}},
		{"vLLM", `{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}`,
			errorInfo{Type: "BadRequestError", Code: "400", Message: "too long"}},
		{"FastAPI detail", `{"detail":"Not Found"}`, errorInfo{Message: "Not Found"}},
		{"FastAPI validation", `{"detail":[{"loc":["body"],"msg":"field required","type":"value_error.missing"}]}`,
			errorInfo{Type: "value_error.missing", Message: "field required"}},
		{"Google array", `[{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}]`,
			errorInfo{Type: "RESOURCE_EXHAUSTED", Code: "429", Message: "Resource exhausted"}},
		{"array, first has no message", `[{}, {"message":"second"}]`, errorInfo{Message: "second"}},
		{"Cloudflare errors", `{"success":false,"errors":[{"code":7003,"message":"No route"}]}`,
			errorInfo{Code: "7003", Message: "No route"}},
		{"Baidu", `{"error_code":17,"error_msg":"Open api daily request limit reached"}`,
			errorInfo{Code: "17", Message: "Open api daily request limit reached"}},
		{"Anthropic", `{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}`,
			errorInfo{Type: "not_found_error", Message: "model: claude-x"}},
		{"DashScope", `{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"abc"}`,
			errorInfo{Code: "InvalidApiKey", Message: "Invalid API-key provided."}},
		{"inner wins", `{"message":"outer","error":{"message":"inner"}}`, errorInfo{Message: "inner"}},
		{"JSON string", `"Internal Server Error"`, errorInfo{Message: "Internal Server Error"}},
		{"whitespace collapsed", "{\"error\":{\"message\":\"line one\\n\\n  line\\ttwo\"}}", errorInfo{Message: "line one line two"}},
		{"null", `null`, errorInfo{}},
		{"number", `42`, errorInfo{}},
		{"unknown", `{"oops":1}`, errorInfo{}},
		{"deep nesting stops", strings.Repeat(`{"error":`, 50) + `"deep"` + strings.Repeat(`}`, 50), errorInfo{}},
		{"long message clipped", `{"error":{"message":"` + strings.Repeat("é", 1000) + `"}}`,
			errorInfo{Message: strings.Repeat("é", (maxMessage-len("…"))/2) + "…"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, parseErrorBody([]byte(tt.body)), cmp.AllowUnexported(errorInfo{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestIsModelNotFound(t *testing.T) {
	tests := []struct {
		status int
		ei     errorInfo
		want   bool
	}{
		{404, errorInfo{Code: "model_not_found"}, true},
		{400, errorInfo{Code: "MODEL_NOT_FOUND"}, true},
		{404, errorInfo{Code: "DeploymentNotFound"}, true},
		{404, errorInfo{Code: "model_not_available", Message: "Unable to access model x"}, true},
		{400, errorInfo{Type: "invalid_model", Message: "Invalid model: x"}, true},
		{404, errorInfo{Message: "The model `gpt-4.1-nano-2099` does not exist or you do not have access to it."}, true},
		{404, errorInfo{Message: `model "llama3.2:1b" not found, try pulling it first`}, true},
		{400, errorInfo{Message: "Model Not Exist"}, true},
		{400, errorInfo{Message: "Unknown model: foo"}, true},
		{400, errorInfo{Message: "No such model 'bar'"}, true},
		{400, errorInfo{Message: "The model doesn't exist"}, true},
		{422, errorInfo{Message: "The model `x` does not exist."}, false},
		{500, errorInfo{Message: "model x not found"}, false},
		{404, errorInfo{Message: "Not Found"}, false},
		{404, errorInfo{Message: "File not found"}, false},
		{400, errorInfo{Message: "This model's maximum context length is 8192 tokens"}, false},
		{400, errorInfo{Message: "remodeling not found"}, false},
	}
	for _, tt := range tests {
		if got := isModelNotFound(tt.status, tt.ei); got != tt.want {
			t.Errorf("isModelNotFound(%d, %+v) = %v, want %v", tt.status, tt.ei, got, tt.want)
		}
	}
}

func TestTextSnippet(t *testing.T) {
	tests := []struct {
		name, in string
		html     bool
		n        int
		want     string
	}{
		{"plain", "  hello \n\t world  ", false, 100, "hello world"},
		{"plain keeps angle brackets", "a < b > c", false, 100, "a < b > c"},
		{"tags", "<h1>Title</h1><p>Body&nbsp;text &lt;ok&gt;</p>", true, 100, "Title Body text <ok>"},
		{"script and style", "<STYLE>p{}</STYLE><Script type=x>alert('<b>')</SCRIPT>visible", true, 100, "visible"},
		{"comment", "a<!-- <b>hidden</b> -->b", true, 100, "a b"},
		{"unclosed tag", "text <div class=", true, 100, "text"},
		{"unclosed script", "text <script>var x", true, 100, "text"},
		{"control characters", "a\x00b\x1bc", false, 100, "a b c"},
		{"invalid UTF-8", "a\xffb", false, 100, "a\uFFFDb"},
		{"clipped on a rune boundary", "ééééé", false, 6, "é…"},
		{"empty", "", true, 100, ""},
	}
	for _, tt := range tests {
		got := textSnippet([]byte(tt.in), tt.html, tt.n)
		if got != tt.want {
			t.Errorf("%s: textSnippet(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

// FuzzErrorBody feeds arbitrary answers to the code that reads them: it must never
// panic, must always leave a valid JSON body and a bounded, valid UTF-8 message, and
// must never hand on the API key.
func FuzzErrorBody(f *testing.F) {
	seeds := []struct {
		status int
		ct     string
		body   string
	}{
		{429, "application/json", `{"error":{"message":"slow","type":"requests","code":429}}`},
		{404, "application/json", `{"error":"model \"x\" not found"}`},
		{400, "application/json", `[{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}]`},
		{422, "application/json", `{"detail":[{"msg":"field required"}]}`},
		{500, "text/html", "<html><script>x</script><h1>Oops</h1></html>"},
		{502, "text/plain", "bad gateway"},
		{503, "", ""},
		{200, "application/json", `{"usage":{"prompt_tokens":1}}`},
		{200, "text/event-stream", "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n"},
		{200, "application/json", `{"id":`},
		{401, "application/json", `{"error":{"message":"key ` + testKey + `"}}`},
	}
	for _, s := range seeds {
		f.Add(s.status, s.ct, []byte(s.body))
	}
	c, err := New(Config{BaseURL: "http://fuzz.invalid/v1", APIKey: testKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		if status < 100 || status > 999 {
			status = 200 + (status&0x7fffffff)%400
		}
		resp := &sluice.Response{StatusCode: status}
		raw := rawBody{data: body}
		ue := c.interpret(resp, http.Header{"Content-Type": {ct}}, &raw)
		if status/100 != 2 && ue == nil {
			t.Fatalf("status %d gave no error", status)
		}
		if ue == nil && !json.Valid(resp.Body) {
			t.Fatalf("success with invalid JSON body %q", resp.Body)
		}
		if ue != nil {
			if !json.Valid(resp.Body) {
				t.Fatalf("error answer left invalid JSON body %q", resp.Body)
			}
			if len(ue.Message) > maxMessage+64 || !utf8.ValidString(ue.Message) {
				t.Fatalf("message of %d bytes, valid UTF-8 %v: %q", len(ue.Message), utf8.ValidString(ue.Message), ue.Message)
			}
			if len(ue.Code) > maxField || len(ue.Type) > maxField {
				t.Fatalf("code %q or type %q too long", ue.Code, ue.Type)
			}
			if strings.Contains(ue.Error(), testKey) {
				t.Fatalf("error leaks the key: %v", ue)
			}
		}
		if strings.Contains(string(resp.Body), testKey) {
			t.Fatalf("body leaks the key: %s", resp.Body)
		}
		if resp.Usage.PromptTokens < 0 || resp.Usage.CompletionTokens < 0 || resp.Usage.CachedTokens < 0 ||
			resp.Usage.CachedTokens > resp.Usage.PromptTokens {
			t.Fatalf("usage out of bounds: %+v", resp.Usage)
		}
	})
}
