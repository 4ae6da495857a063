package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/gateway"
	"github.com/sluice-llm/sluice/sim"
)

// errorIn200Body is an OpenRouter failure passed on as a 200 (sim.Quirks.ErrorIn200).
const errorIn200Body = `{"error":{"message":"Provider returned error","code":502,"metadata":{"provider_name":"sim","raw":"upstream overloaded"}}}`

// TestFailoverErrorIn200 moves on from a 200 whose body is an error object, as from a
// 5xx: the client gets the next upstream's answer. With no other upstream, the client
// gets the status the error's code stands for (502 without one) and the upstream's
// error body, and the request counts no tokens.
func TestFailoverErrorIn200(t *testing.T) {
	bad, badSim := startSim(t, sim.Config{Seed: 1, Quirks: sim.Quirks{ErrorIn200: 1}})
	live, up := startSim(t, sim.Config{Seed: 1})
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
		{Name: "relay", BaseURL: bad, Models: []string{"gpt-4o-mini"}},
		{Name: "live", BaseURL: live},
	}})
	got, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	if err != nil || len(got.Choices) == 0 || badSim.ErrorsIn200() != 1 || up.Stats().OK != 1 {
		t.Fatalf("err %v, %d choices, %d errors in 200, live answered %d", err, len(got.Choices), badSim.ErrorsIn200(),
			up.Stats().OK)
	}

	for _, tt := range []struct {
		name, body string
		status     int // the client's
		engine     int // the status of the engine's error: as the engine's own client reads it
	}{
		{"code 502", errorIn200Body, http.StatusBadGateway, http.StatusBadGateway},
		{"code 429", `{"error":{"message":"Rate limited","code":429}}`, http.StatusTooManyRequests, http.StatusTooManyRequests},
		{"string code", `{"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}`, http.StatusBadGateway, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			only := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tt.body)
			}))
			engine := &recordingEngine{}
			_, g, srv := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "relay", BaseURL: only, Engine: engine}}})
			resp := post(t, srv.URL, "/v1/chat/completions", clientKey, `{"model":"gpt-4o-mini","messages":[],"max_tokens":50}`)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(body) != tt.body {
				t.Fatalf("status %d, body %s; want %d and the upstream's body", resp.StatusCode, body, tt.status)
			}
			srv.Close() // the handler has counted its usage and told the engine
			var ue *sluice.UpstreamError
			if err := engine.err.Load(); err == nil || !errors.As(*err, &ue) || ue.StatusCode != tt.engine {
				t.Fatalf("the engine was told %v, want an upstream error of status %d", err, tt.engine)
			}
			for _, u := range g.Usage() {
				if u.Requests != 1 || u.Usage.PromptTokens != 0 || u.Usage.CompletionTokens != 0 {
					t.Fatalf("usage %+v: want 1 request and no tokens", u)
				}
			}
		})
	}
}

// recordingEngine admits every request and keeps the error its last answer was settled
// with.
type recordingEngine struct{ err atomic.Pointer[error] }

func (e *recordingEngine) Admit(context.Context, sluice.Estimate, time.Duration) (func(*sluice.Response, error), error) {
	return func(_ *sluice.Response, err error) { e.err.Store(&err) }, nil
}

func (e *recordingEngine) MeanOutput(def int64) int64 { return def }

// errorStream is an upstream that streams an error event as its first data (after a
// keep-alive comment), as relays do when a provider fails.
func errorStream(calls *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": PROCESSING\n\ndata: {\"error\":{\"message\":\"Provider returned error\",\"code\":502}}\n\ndata: [DONE]\n\n")
	}
}

// TestFailoverStreamError moves on from a stream whose first data event is an error,
// nothing having been sent to the client; with no other upstream, the stream is relayed
// as it is, and its error reaches the client.
func TestFailoverStreamError(t *testing.T) {
	var calls atomic.Int64
	live, up := startSim(t, sim.Config{Seed: 1})
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
		{Name: "relay", BaseURL: serveMux(t, errorStream(&calls)), Models: []string{"gpt-4o-mini"}},
		{Name: "live", BaseURL: live},
	}})
	params := openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}
	stream := c.Chat.Completions.NewStreaming(context.Background(), params)
	var text strings.Builder
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil || text.Len() == 0 || calls.Load() != 1 || up.Stats().OK != 1 {
		t.Fatalf("err %v, text %q, relay called %d times, live answered %d", err, text.String(), calls.Load(), up.Stats().OK)
	}

	only, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
		{Name: "relay", BaseURL: serveMux(t, errorStream(&calls))},
	}})
	stream = only.Chat.Completions.NewStreaming(context.Background(), params)
	for stream.Next() {
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "Provider returned error") {
		t.Fatalf("stream error %v, want the upstream's", err)
	}
}

// TestUpstreamClosesAfterAnswer answers every request of a client whose upstream closes
// each keep-alive connection right after its answer, each request reaching the upstream
// once.
func TestUpstreamClosesAfterAnswer(t *testing.T) {
	l, err := sim.Start(sim.Config{Seed: 1, Quirks: sim.Quirks{CloseAfterAnswer: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "closing", BaseURL: l.URL}}})
	const n = 20
	for i := range n {
		if _, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := l.Stats().Requests; got != n || l.ClosedAfterAnswer() != n {
		t.Fatalf("the upstream read %d requests and closed %d connections for %d", got, l.ClosedAfterAnswer(), n)
	}
}

// TestFailoverStreamBrokenBeforeData moves on from a stream whose connection broke
// before its first data event, nothing having been sent to the client.
func TestFailoverStreamBrokenBeforeData(t *testing.T) {
	broken := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, ": PROCESSING\n\n")
		w.(http.Flusher).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	live, up := startSim(t, sim.Config{Seed: 1})
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
		{Name: "broken", BaseURL: broken, Models: []string{"gpt-4o-mini"}},
		{Name: "live", BaseURL: live},
	}})
	stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	n := 0
	for stream.Next() {
		n++
	}
	if err := stream.Err(); err != nil || n == 0 || up.Stats().OK != 1 {
		t.Fatalf("err %v, %d chunks, live answered %d", err, n, up.Stats().OK)
	}
}
