package openai

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluice-llm/sluice"
)

func TestDoPassesBodiesThroughUnchanged(t *testing.T) {
	// Odd spacing, key order, escapes and non-ASCII text must survive byte for byte.
	const reqBody = "{ \"model\" : \"gpt-4o-mini\",\n\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9llo <b>&</b> \U0001F600\"}] }"
	const respBody = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\n  \"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"<b>\\u0026 caf\u00e9</b>\"},\"finish_reason\":\"stop\"}],\n  \"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n"
	type seen struct {
		method, path, auth, contentType, ua, org string
		body                                     []byte
	}
	got := make(chan seen, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"),
			r.Header.Get("User-Agent"), r.Header.Get("OpenAI-Organization"), b}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Request-Id", "req_abc123")
		h.Set("X-Ratelimit-Limit-Requests", "500")
		h.Set("X-Ratelimit-Remaining-Requests", "499")
		h.Set("X-Ratelimit-Reset-Requests", "120ms")
		h.Set("X-Ratelimit-Limit-Tokens", "200000")
		h.Set("X-Ratelimit-Remaining-Tokens", "199000")
		h.Set("X-Ratelimit-Reset-Tokens", "6m0s")
		_, _ = io.WriteString(w, respBody)
	})
	c := newClient(t, srv, func(cfg *Config) { cfg.Header = http.Header{"openai-organization": {"org-1"}} })
	req := chatRequest()
	req.Body = []byte(reqBody)
	resp, err := c.Do(context.Background(), req)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	s := <-got
	wantSeen := seen{"POST", "/v1/chat/completions", "Bearer " + testKey, "application/json", "sluice-test", "org-1", []byte(reqBody)}
	if diff := cmp.Diff(wantSeen, s, cmp.AllowUnexported(seen{})); diff != "" {
		t.Errorf("request as received (-want +got):\n%s", diff)
	}
	want := &sluice.Response{
		StatusCode: 200,
		RequestID:  "req_abc123",
		Body:       json.RawMessage(respBody),
		Usage:      sluice.Usage{PromptTokens: 12, CompletionTokens: 7, CachedTokens: 4},
		Limits: sluice.RateLimits{
			HasRequests: true, LimitRequests: 500, RemainingRequests: 499, ResetRequests: 120 * time.Millisecond,
			HasTokens: true, LimitTokens: 200000, RemainingTokens: 199000, ResetTokens: 6 * time.Minute,
		},
	}
	if diff := cmp.Diff(want, resp, cmpopts.IgnoreFields(sluice.Response{}, "Latency")); diff != "" {
		t.Errorf("Response (-want +got):\n%s", diff)
	}
	if !bytes.Equal(resp.Body, []byte(respBody)) {
		t.Errorf("body changed:\n got %q\nwant %q", resp.Body, respBody)
	}
	if resp.Latency <= 0 {
		t.Errorf("Latency = %v, want > 0", resp.Latency)
	}
}

func TestDoChunkedAndGzipAnswers(t *testing.T) {
	const body = `{"object":"list","data":[{"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":3,"total_tokens":3}}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, body[:20])
			_ = http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, body[20:])
		}},
		{"gzip", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Accept-Encoding") != "gzip" {
				t.Errorf("Accept-Encoding = %q, want gzip", r.Header.Get("Accept-Encoding"))
			}
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, body)
			_ = zw.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, serve(t, tt.handler))
			resp, err := do(t, c)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if string(resp.Body) != body {
				t.Errorf("Body = %s, want %s", resp.Body, body)
			}
			if want := (sluice.Usage{PromptTokens: 3}); resp.Usage != want {
				t.Errorf("Usage = %+v, want %+v", resp.Usage, want)
			}
		})
	}
}

// hijack is a handler that takes over the connection and hands it to fn.
func hijack(t *testing.T, fn func(conn io.ReadWriteCloser)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		fn(conn)
	}
}

func TestDoNoAnswer(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"closed before an answer", hijack(t, func(c io.ReadWriteCloser) { _ = c.Close() })},
		{"reset before an answer", hijack(t, func(c io.ReadWriteCloser) {
			if tc, ok := c.(interface{ SetLinger(int) error }); ok {
				_ = tc.SetLinger(0) // close with RST
			}
			_ = c.Close()
		})},
		{"closed after the headers", hijack(t, func(c io.ReadWriteCloser) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
			_ = c.Close()
		})},
		{"chunked body cut", hijack(t, func(c io.ReadWriteCloser) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"id\":\r\n")
			_ = c.Close()
		})},
		{"garbage instead of HTTP", hijack(t, func(c io.ReadWriteCloser) {
			_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
			_ = c.Close()
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := do(t, newClient(t, serve(t, tt.handler)))
			if resp != nil {
				t.Errorf("Response = %+v, want nil", resp)
			}
			ue := upstreamError(t, err)
			if ue.StatusCode != 0 || ue.Code != sluice.CodeConnection || ue.Err == nil || !ue.Retryable() {
				t.Errorf("error = %#v, want a retryable connection error with a cause", ue)
			}
			if !strings.Contains(ue.Message, "/v1/chat/completions") {
				t.Errorf("Message %q does not name the URL", ue.Message)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		c := newClient(t, srv)
		srv.Close() // nothing listens at the address any more
		resp, err := do(t, c)
		ue := upstreamError(t, err)
		if resp != nil || ue.Code != sluice.CodeConnection || ue.StatusCode != 0 {
			t.Errorf("Do = %v, %#v; want nil and a connection error", resp, ue)
		}
	})
}

func TestDoTimeout(t *testing.T) {
	// The handlers read the request body first, so that the server notices the client
	// going away and cancels r.Context().
	tests := []struct {
		name    string
		handler func(release <-chan struct{}) http.HandlerFunc
	}{
		{"no headers", func(release <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}
		}},
		{"body stalls", func(release <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"id":`)
				_ = http.NewResponseController(w).Flush()
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			c := newClient(t, serve(t, tt.handler(release)))
			t.Cleanup(func() { close(release) }) // before the server's Close
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			resp, err := c.Do(ctx, chatRequest())
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Do returned after %v, want promptly after the 50ms deadline", elapsed)
			}
			ue := upstreamError(t, err)
			if resp != nil || ue.StatusCode != 0 || ue.Code != sluice.CodeTimeout || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Do = %v, %#v; want nil and a timeout wrapping context.DeadlineExceeded", resp, ue)
			}
		})
	}
}

func TestDoCanceled(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		close(arrived)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := newClient(t, srv)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	resp, err := c.Do(ctx, chatRequest())
	if resp != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, %v; want nil and an error wrapping context.Canceled", resp, err)
	}
	_ = upstreamError(t, err)
}

func TestDoInvalidRequestURL(t *testing.T) {
	c := newClient(t, serve(t, answer(200, `{}`)))
	for _, u := range []string{"", "chat/completions", "//evil.example/v1/chat", "https://evil.example/v1/chat/completions"} {
		req := chatRequest()
		req.URL = u
		resp, err := c.Do(context.Background(), req)
		if resp != nil || err == nil {
			t.Errorf("Do with url %q = %v, %v; want an error", u, resp, err)
		}
	}
	if _, err := c.Do(context.Background(), nil); err == nil {
		t.Error("Do(nil) succeeded")
	}
}

func TestBaseURLJoining(t *testing.T) {
	tests := []struct {
		base, url string
		want      string // path and query the server sees
	}{
		{"/v1", "/v1/chat/completions", "/v1/chat/completions"},
		{"/v1/", "/v1/embeddings", "/v1/embeddings"},
		{"/v1//", "/v1/responses", "/v1/responses"},
		{"/api/openai", "/v1/chat/completions", "/api/openai/chat/completions"},
		{"", "/v1/completions", "/completions"},
		{"/", "/v1/completions", "/completions"},
		{"/compatible-mode/v1", "/v1/chat/completions", "/compatible-mode/v1/chat/completions"},
		{"/openai/deployments/gpt4o?api-version=2024-10-21", "/v1/chat/completions", "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"},
		{"/v1", "/v1/custom?x=1", "/v1/custom?x=1"},
		{"/v1?a=b", "/v1/custom?x=1", "/v1/custom?a=b&x=1"},
		{"/v1", "/v1", "/v1"},
		{"/v1", "/v10/thing", "/v1/v10/thing"},
		{"/v1", "/chat/completions", "/v1/chat/completions"},
	}
	got := make(chan string, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.RequestURI()
		_, _ = io.WriteString(w, `{}`)
	})
	for _, tt := range tests {
		c := newClient(t, srv, func(cfg *Config) { cfg.BaseURL = srv.URL + tt.base })
		req := chatRequest()
		req.URL = tt.url
		if _, err := c.Do(context.Background(), req); err != nil {
			t.Errorf("base %q + %q: %v", tt.base, tt.url, err)
			continue
		}
		if g := <-got; g != tt.want {
			t.Errorf("base %q + %q: sent to %q, want %q", tt.base, tt.url, g, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	for _, base := range []string{"", "api.openai.com/v1", "ftp://host/v1", "http://", "https:///v1", "://x", "http://[::1"} {
		if _, err := New(Config{BaseURL: base}); err == nil {
			t.Errorf("New with base URL %q succeeded", base)
		} else if !strings.HasPrefix(err.Error(), "openai: ") {
			t.Errorf("New error %q lacks the package prefix", err)
		}
	}
	if _, err := New(Config{BaseURL: "https://api.openai.com/v1", MaxBodyBytes: -1}); err == nil {
		t.Error("New with negative MaxBodyBytes succeeded")
	}
	tests := []struct{ base, want string }{
		{"https://api.openai.com/v1", "https://api.openai.com/v1"},
		{" https://api.deepseek.com/v1/ ", "https://api.deepseek.com/v1"},
		{"http://user:secret@gw.local:8080/api/openai?key=secret#frag", "http://gw.local:8080/api/openai"},
	}
	for _, tt := range tests {
		c, err := New(Config{BaseURL: tt.base, APIKey: testKey})
		if err != nil {
			t.Errorf("New(%q): %v", tt.base, err)
			continue
		}
		if got := c.BaseURL(); got != tt.want {
			t.Errorf("BaseURL() of %q = %q, want %q", tt.base, got, tt.want)
		}
		c.CloseIdleConnections()
	}
}

func TestNoAuthorizationWithoutKey(t *testing.T) {
	got := make(chan []string, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Values("Authorization")
		_, _ = io.WriteString(w, `{}`)
	})
	c := newClient(t, srv, func(cfg *Config) { cfg.APIKey = "" })
	if _, err := do(t, c); err != nil {
		t.Fatal(err)
	}
	if a := <-got; len(a) != 0 {
		t.Errorf("Authorization = %q, want none", a)
	}
}

func TestDoHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut short at Close
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := NewTransport(4)
	tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	c := newClient(t, srv, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := do(t, c); err != nil {
				t.Errorf("Do over HTTP/2: %v", err)
			}
		})
	}
	wg.Wait()
	resp, err := c.hc.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol = %s, want HTTP/2", resp.Proto)
	}
}

func TestDoConcurrent(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Request-Id", string(b))
		fmt.Fprintf(w, `{"echo":%s,"usage":{"prompt_tokens":%d,"completion_tokens":1}}`, b, len(b))
	})
	c := newClient(t, srv)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			for j := range 20 {
				body := fmt.Sprintf(`"%d-%d"`, i, j)
				resp, err := c.Do(context.Background(), &sluice.Request{URL: sluice.EndpointChatCompletions, Body: []byte(body)})
				if err != nil {
					t.Errorf("Do: %v", err)
					return
				}
				want := fmt.Sprintf(`{"echo":%s,"usage":{"prompt_tokens":%d,"completion_tokens":1}}`, body, len(body))
				if string(resp.Body) != want || resp.RequestID != body || resp.Usage.PromptTokens != int64(len(body)) {
					t.Errorf("answer for %s = %s (id %s, %+v)", body, resp.Body, resp.RequestID, resp.Usage)
				}
			}
		})
	}
	wg.Wait()
}

func TestModels(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    []string
		wantErr bool
	}{
		{"OpenAI", answer(200, `{"object":"list","data":[{"id":"gpt-4o","object":"model"},{"id":"gpt-4o-mini","object":"model"}]}`),
			[]string{"gpt-4o", "gpt-4o-mini"}, false},
		{"models with names", answer(200, `{"models":[{"name":"llama3.2:latest"},{"id":"qwen3"}]}`),
			[]string{"llama3.2:latest", "qwen3"}, false},
		{"empty", answer(200, `{"data":[]}`), []string{}, false},
		{"unauthorized", answer(401, `{"error":{"message":"bad key","code":"invalid_api_key"}}`), nil, true},
		{"not JSON", answer(200, `<html></html>`), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var method, path, auth string
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				method, path, auth = r.Method, r.URL.Path, r.Header.Get("Authorization")
				tt.handler(w, r)
			})
			got, err := newClient(t, srv).Models(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Models error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				var ue *sluice.UpstreamError
				if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "list models: ") {
					t.Errorf("Models error = %v, want a wrapped *sluice.UpstreamError", err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Models (-want +got):\n%s", diff)
			}
			if method != http.MethodGet || path != "/v1/models" || auth != "Bearer "+testKey {
				t.Errorf("request = %s %s (auth %q), want GET /v1/models with the key", method, path, auth)
			}
		})
	}
}

func TestNewTransport(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 64, 1000} {
		tr := NewTransport(n)
		if tr.MaxIdleConnsPerHost < max(n, 1) || tr.MaxConnsPerHost != 0 || tr.ResponseHeaderTimeout != 0 ||
			tr.DisableCompression || !tr.ForceAttemptHTTP2 || tr.IdleConnTimeout <= 0 || tr.TLSHandshakeTimeout <= 0 {
			t.Errorf("NewTransport(%d) = %+v", n, tr)
		}
		if tr.MaxIdleConns != 0 && tr.MaxIdleConns < tr.MaxIdleConnsPerHost {
			t.Errorf("NewTransport(%d): MaxIdleConns %d < MaxIdleConnsPerHost %d", n, tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
		}
	}
}

func TestDefaultHTTPClient(t *testing.T) {
	srv := serve(t, answer(200, `{}`))
	c, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if _, err := c.Do(context.Background(), chatRequest()); err != nil {
		t.Fatalf("Do with the default HTTP client: %v", err)
	}
	if c.maxBody != DefaultMaxBodyBytes {
		t.Errorf("maxBody = %d, want %d", c.maxBody, DefaultMaxBodyBytes)
	}
}

func TestDoUnsendableURL(t *testing.T) {
	c := newClient(t, serve(t, answer(200, `{}`)), func(cfg *Config) { cfg.BaseURL += "?key=" + testKey })
	req := chatRequest()
	req.URL = "/v1/chat completions\x7f"
	resp, err := c.Do(context.Background(), req)
	ue := upstreamError(t, err)
	if resp != nil || ue.Code != sluice.CodeInvalidRequest {
		t.Errorf("Do = %v, %#v; want nil and an invalid request error", resp, ue)
	}
	checkNoKey(t, "error", err)
}

// TestNewTransportFor uses sluice's own HTTP/1.1 client for a plain-HTTP upstream and
// net/http's for https.
func TestNewTransportFor(t *testing.T) {
	for base, own := range map[string]bool{
		"http://127.0.0.1:8000/v1":    true,
		"https://api.openai.com/v1":   false,
		"http://user:pw@127.0.0.1/v1": false,
	} {
		tr := NewTransportFor(base, 4)
		if _, ok := tr.(*http.Transport); ok == own {
			t.Errorf("NewTransportFor(%s) = %T", base, tr)
		}
	}
}
