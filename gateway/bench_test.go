package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/gateway"
)

const benchAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}`

// BenchmarkProxy measures a proxied chat request with an engine, a budget and usage on,
// against a fixed answer on loopback: the client, the gateway and the upstream all run
// in the benchmark's process.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(benchAnswer))
	}))
	defer up.Close()
	st := openStoreB(b)
	eng, err := sluice.New(st, nobody{}, sluice.Config{})
	if err != nil {
		b.Fatal(err)
	}
	pool := sluice.NewBudgetPool(sluice.Budget{MaxCost: 1e9}, func(string, sluice.Usage) float64 { return 1e-6 }, 0, 0)
	g, err := gateway.New(gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "u", BaseURL: up.URL + "/v1", Engine: eng}},
		Keys:      []gateway.Key{{Name: "k", Hash: gateway.HashKey(clientKey), RPM: 1e12, TPM: 1e15}},
		Budget:    func(context.Context, string) (*sluice.BudgetPool, error) { return pool, nil },
		Usage:     st,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close(context.Background())
	hs := httptest.NewServer(g.Handler())
	defer hs.Close()
	c := &http.Client{Transport: gateway.NewTransport(256)}
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+clientKey)
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// roundTripFunc is an http.RoundTripper of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkHandler measures the gateway's own work on a proxied chat request (keys,
// engine limiter, budget, usage, body handling), without the network: the handler is
// called directly and the upstream is a function answering at once.
func BenchmarkHandler(b *testing.B) {
	st := openStoreB(b)
	eng, err := sluice.New(st, nobody{}, sluice.Config{})
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(benchAnswer)
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(answer)), ContentLength: int64(len(answer)), Request: r}, nil
	})
	pool := sluice.NewBudgetPool(sluice.Budget{MaxCost: 1e9}, func(string, sluice.Usage) float64 { return 1e-6 }, 0, 0)
	g, err := gateway.New(gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "u", BaseURL: "http://upstream.invalid/v1", Engine: eng, Transport: rt}},
		Keys:      []gateway.Key{{Name: "k", Hash: gateway.HashKey(clientKey), RPM: 1e12, TPM: 1e15}},
		Budget:    func(context.Context, string) (*sluice.BudgetPool, error) { return pool, nil },
		Usage:     st,
		Cost:      func(string, sluice.Usage) float64 { return 1e-6 },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close(context.Background())
	h := g.Handler()
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16,"user":"u1"}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+clientKey)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}
