package openai

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestKeyNeverLeaks runs the client through every kind of answer, including upstreams
// that echo the Authorization header back, and looks for the key in every error (in
// every format) and every Response.
func TestKeyNeverLeaks(t *testing.T) {
	echo := func(status int, ct string, format string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("X-Request-Id", r.Header.Get("Authorization"))
			w.WriteHeader(status)
			fmt.Fprintf(w, format, r.Header.Get("Authorization"))
		}
	}
	handlers := map[string]http.HandlerFunc{
		"success":              answer(200, `{"ok":true}`),
		"success echoing":      echo(200, "application/json", `{"headers":{"Authorization":%q}}`),
		"401 echoing":          echo(401, "application/json", `{"error":{"message":"Incorrect API key provided: %s","code":"invalid_api_key"}}`),
		"400 echoing as text":  echo(400, "text/plain", "bad header %s"),
		"500 echoing in HTML":  echo(500, "text/html", "<h1>Error</h1><pre>%s</pre>"),
		"200 echoing not JSON": echo(200, "text/plain", "auth=%s"),
		"stream echoing": echo(200, "text/event-stream",
			`data: {"choices":[{"index":0,"delta":{"content":%q}}]}`+"\n\ndata: [DONE]\n\n"),
		"stream error echoing": echo(200, "text/event-stream", `data: {"error":{"message":%q}}`+"\n\n"),
		"reset":                hijack(t, func(c io.ReadWriteCloser) { _ = c.Close() }),
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			srv := serve(t, h)
			// The key in the base URL's query too: some gateways take it there.
			c := newClient(t, srv, func(cfg *Config) { cfg.BaseURL = srv.URL + "/v1?key=" + testKey })
			resp, err := do(t, c)
			checkNoKey(t, "error", err)
			checkNoKey(t, "Response", resp)
			if resp != nil {
				checkNoKey(t, "Response.Body", string(resp.Body))
			}
			_, err = c.Models(context.Background())
			checkNoKey(t, "Models error", err)
			checkNoKey(t, "Client", c)
			checkNoKey(t, "BaseURL", c.BaseURL())
		})
	}
	t.Run("timeout and refused", func(t *testing.T) {
		release := make(chan struct{})
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		t.Cleanup(func() { close(release) })
		c := newClient(t, srv, func(cfg *Config) { cfg.BaseURL = srv.URL + "/v1?key=" + testKey })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := c.Do(ctx, chatRequest())
		checkNoKey(t, "timeout error", err)

		refused, err := New(Config{BaseURL: "http://127.0.0.1:1/v1?key=" + testKey, APIKey: testKey})
		if err != nil {
			t.Fatal(err)
		}
		_, err = refused.Do(context.Background(), chatRequest())
		checkNoKey(t, "refused error", err)
	})
	t.Run("config", func(t *testing.T) {
		cfg := Config{BaseURL: "https://u:" + testKey + "@api.example/v1?k=" + testKey, APIKey: testKey}
		checkNoKey(t, "Config", cfg)
		checkNoKey(t, "*Config", &cfg)
		_, err := New(Config{BaseURL: "ftp://x/?k=" + testKey, APIKey: testKey})
		checkNoKey(t, "New error", err)
	})
}

// checkNoKey fails the test if any formatting of v contains the key.
func checkNoKey(t *testing.T, what string, v any) {
	t.Helper()
	if v == nil {
		return
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, v); strings.Contains(s, testKey) {
			t.Errorf("%s formatted with %s contains the API key: %s", what, verb, s)
		}
	}
	if err, ok := v.(error); ok {
		for e := err; e != nil; {
			if strings.Contains(e.Error(), testKey) {
				t.Errorf("%s wraps an error that contains the API key: %v", what, e)
			}
			u, ok := e.(interface{ Unwrap() error })
			if !ok {
				break
			}
			e = u.Unwrap()
		}
	}
}
