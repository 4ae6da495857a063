package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/gateway"
)

// TestRelay429RetryAfter passes an upstream's Retry-After, Retry-After-Ms and
// x-ratelimit-* headers on with the 429 it relays (as a 429, or as a 200 whose error's
// code is 429), so that a client waits as long as the upstream asks; with a 5xx it
// relays, the upstream's Retry-After and Retry-After-Ms (the SDKs honour them on any
// status they retry) but not its limits; a 200 answer does not give the upstream
// account's limits to the client.
func TestRelay429RetryAfter(t *testing.T) {
	limits := map[string]string{
		"Retry-After":                    "7",
		"Retry-After-Ms":                 "6500",
		"X-Ratelimit-Remaining-Requests": "0",
		"X-Ratelimit-Reset-Requests":     "6.5s",
	}
	for _, tt := range []struct {
		name       string
		status     int // the upstream's
		body       string
		wantStatus int // the client's
		relayed    bool
		retryAfter bool // Retry-After and Retry-After-Ms relayed (with relayed: all)
	}{
		{"429", http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, http.StatusTooManyRequests, true, true},
		{"200 with code 429", http.StatusOK, `{"error":{"message":"Rate limited","code":429}}`, http.StatusTooManyRequests, true, true},
		{"503", http.StatusServiceUnavailable, `{"error":{"message":"Overloaded","type":"server_error"}}`, http.StatusServiceUnavailable, false, true},
		{"answer", http.StatusOK, `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}]}`, http.StatusOK, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			only := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for name, v := range limits {
					w.Header().Set(name, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			_, _, srv := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "only", BaseURL: only}}})
			resp := post(t, srv.URL, "/v1/chat/completions", clientKey, `{"model":"gpt-4o-mini","messages":[]}`)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			for name, v := range limits {
				want := tt.relayed || (tt.retryAfter && strings.HasPrefix(name, "Retry-After"))
				if got := resp.Header.Get(name); (got == v) != want || (!want && got != "") {
					t.Errorf("%s: %q; want the upstream's %q relayed: %v", name, got, v, want)
				}
			}
		})
	}
}
