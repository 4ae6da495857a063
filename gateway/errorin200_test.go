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
	if _, n, err := streamChat(c); err != nil || n == 0 || up.Stats().OK != 1 {
		t.Fatalf("err %v, %d chunks, live answered %d", err, n, up.Stats().OK)
	}
}

// TestFailoverAfterEmptyChunks moves on from a stream whose first data events carry no
// content (the role-only chunk OpenAI, vLLM and most relays send first, Azure's
// prompt_filter_results chunk with no choices, the Responses API's response.created) and
// whose next event is an error or a broken connection: nothing has reached the client,
// so the next upstream answers. A stream whose first content came before the error is
// relayed as it is.
func TestFailoverAfterEmptyChunks(t *testing.T) {
	const (
		role    = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
		openAI  = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
		azure   = "data: {\"id\":\"\",\"object\":\"\",\"created\":0,\"model\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0}],\"choices\":[]}\n\n"
		content = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
		failed  = "data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502}}\n\n"
	)
	for _, tc := range []struct {
		name, events string
		brk          bool // the connection breaks after the events
		failOver     bool
	}{
		{"role then error", role + failed, false, true},
		{"OpenAI's first chunk then error", ": PROCESSING\n\n" + openAI + failed, false, true},
		{"Azure's filter chunk then error", azure + role + failed, false, true},
		{"CRLF role then error", strings.ReplaceAll(role+failed, "\n", "\r\n"), false, true},
		{"role then break", role, true, true},
		{"role then content then error", role + content + failed, false, false},
		{"role then content then break", role + content, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			bad := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, tc.events)
				w.(http.Flusher).Flush()
				if !tc.brk {
					_, _ = io.WriteString(w, "data: [DONE]\n\n")
				} else if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
			}))
			live, up := startSim(t, sim.Config{Seed: 1})
			c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
				{Name: "relay", BaseURL: bad, Models: []string{"gpt-4o-mini"}},
				{Name: "live", BaseURL: live},
			}})
			text, _, err := streamChat(c)
			if tc.failOver {
				if err != nil || text == "" || calls.Load() != 1 || up.Stats().OK != 1 {
					t.Fatalf("err %v, text %q, relay called %d times, live answered %d", err, text, calls.Load(), up.Stats().OK)
				}
				return
			}
			if err == nil || text != "a" || up.Stats().Requests != 0 {
				t.Fatalf("err %v, text %q, live asked %d times: want the relay's content then its error", err, text, up.Stats().Requests)
			}
		})
	}
}

// TestFailoverAfterResponseCreated moves on from a Responses API stream that failed
// right after its response.created and response.in_progress events.
func TestFailoverAfterResponseCreated(t *testing.T) {
	const (
		created  = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"status\":\"in_progress\"}}\n\n"
		progress = "event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"response\":{\"id\":\"r\",\"status\":\"in_progress\"}}\n\n"
		failed   = "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"r\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"overloaded\"}}}\n\n"
		delta    = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"fine\"}\n\n"
	)
	stream := func(calls *atomic.Int64, events string) string {
		return serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			calls.Add(1)
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, events)
		}))
	}
	var bad, good atomic.Int64
	_, _, srv := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
		{Name: "relay", BaseURL: stream(&bad, created+progress+failed), Models: []string{"gpt-4o-mini"}},
		{Name: "live", BaseURL: stream(&good, created+delta)},
	}})
	resp := post(t, srv.URL, "/v1/responses", clientKey, `{"model":"gpt-4o-mini","input":"hi","stream":true}`)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != created+delta || bad.Load() != 1 || good.Load() != 1 {
		t.Fatalf("status %d, err %v, relay called %d times, live %d, body %.300s", resp.StatusCode, err, bad.Load(), good.Load(), body)
	}
}
