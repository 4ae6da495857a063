package openai

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
)

// benchBody is a typical small Chat Completions answer (about 1 KiB).
var benchBody = `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"` +
	strings.Repeat("Sluice streams requests. ", 24) + `","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":120,"total_tokens":139,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_06737a9306"}`

// benchHandler answers like OpenAI: JSON with a request id and rate-limit headers.
func benchHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Request-Id"] = []string{"req_0123456789abcdef"}
	h["X-Ratelimit-Limit-Requests"] = []string{"30000"}
	h["X-Ratelimit-Remaining-Requests"] = []string{"29999"}
	h["X-Ratelimit-Reset-Requests"] = []string{"2ms"}
	h["X-Ratelimit-Limit-Tokens"] = []string{"150000000"}
	h["X-Ratelimit-Remaining-Tokens"] = []string{"149999850"}
	h["X-Ratelimit-Reset-Tokens"] = []string{"0s"}
	_, _ = io.WriteString(w, benchBody)
}

// BenchmarkDo measures whole round trips to a loopback server from 64 goroutines, the
// server included, over net/http's transport (NewTransport) and over the one the engine
// uses for a plain-HTTP upstream (NewTransportFor: internal/h1):
// go test -run '^$' -bench BenchmarkDo -benchmem ./openai/
func BenchmarkDo(b *testing.B) {
	srv := serve(b, benchHandler)
	for _, tc := range []struct {
		name      string
		transport http.RoundTripper
	}{{"net-http", NewTransport(64)}, {"h1", NewTransportFor(srv.URL, 64)}} {
		b.Run(tc.name, func(b *testing.B) {
			c := newClient(b, srv, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tc.transport} })
			req := chatRequest()
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Do(context.Background(), req)
					if err != nil || len(resp.Body) != len(benchBody) {
						b.Errorf("Do: %v", err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkInterpret measures the client's own work on an answer, without the network:
// JSON check, usage, rate-limit headers and request id.
func BenchmarkInterpret(b *testing.B) {
	c := newClient(b, serve(b, benchHandler))
	rec := &fakeWriter{h: http.Header{}}
	benchHandler(rec, &http.Request{Body: http.NoBody})
	body := []byte(benchBody)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp := &sluice.Response{StatusCode: 200, RequestID: requestID(rec.h), Limits: parseRateLimits(rec.h, fixedNow)}
		raw := rawBody{data: body}
		if ue := c.interpret(resp, rec.h, &raw); ue != nil {
			b.Fatal(ue)
		}
	}
}

// BenchmarkAssembleStream measures assembling a streamed answer of about 100 chunks.
func BenchmarkAssembleStream(b *testing.B) {
	var sb strings.Builder
	for range 100 {
		sb.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"token "},"finish_reason":null}]}` + "\n\n")
	}
	sb.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":100}}` + "\n\ndata: [DONE]\n\n")
	in := []byte(sb.String())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := assembleStream(in); err != nil {
			b.Fatal(err)
		}
	}
}

type fakeWriter struct {
	h http.Header
}

func (w *fakeWriter) Header() http.Header         { return w.h }
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fakeWriter) WriteHeader(int)             {}
