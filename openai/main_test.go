package openai

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testKey is the API key every test client sends; no error or Response may contain it.
const testKey = "sk-test-9f8e7d6c5b4a3210-DO-NOT-LEAK"

// fixedNow is the clock of test clients, for Retry-After dates and reset times.
var fixedNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// serve starts a loopback server for the test and closes it when the test ends.
func serve(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client of srv with base URL srv.URL+"/v1", the test key and the
// fixed clock; edit changes the config before the client is made.
func newClient(t testing.TB, srv *httptest.Server, edit ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BaseURL:    srv.URL + "/v1",
		APIKey:     testKey,
		HTTPClient: &http.Client{Transport: NewTransportFor(srv.URL+"/v1", 8)},
		UserAgent:  "sluice-test",
	}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.now = func() time.Time { return fixedNow }
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// answer is a handler that answers with status, headers (name, value pairs) and body.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// chatRequest is a small Chat Completions request.
func chatRequest() *sluice.Request {
	return &sluice.Request{
		CustomID: "req-1",
		Method:   http.MethodPost,
		URL:      sluice.EndpointChatCompletions,
		Body:     []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}`),
	}
}

// do sends chatRequest to c with a generous timeout.
func do(t testing.TB, c *Client) (*sluice.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Do(ctx, chatRequest())
}

// upstreamError asserts err is an *sluice.UpstreamError and returns it.
func upstreamError(t testing.TB, err error) *sluice.UpstreamError {
	t.Helper()
	var ue *sluice.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("error = %T %v, want *sluice.UpstreamError", err, err)
	}
	return ue
}
