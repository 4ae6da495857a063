package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice/gateway"
	"github.com/sluice-llm/sluice/sim"
)

// closedPort returns the base URL of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/v1"
}

// TestFailoverConnectionRefused answers every request from the second upstream while the
// first, tried first since it names the model, refuses connections.
func TestFailoverConnectionRefused(t *testing.T) {
	base, up := startSim(t, sim.Config{Seed: 1})
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
		{Name: "dead", BaseURL: closedPort(t), Models: []string{"gpt-4o-mini"}},
		{Name: "live", BaseURL: base},
	}})
	for i := range 5 {
		_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if ok := up.Stats().OK; ok != 6 {
		t.Fatalf("the live upstream answered %d, want 6", ok)
	}
}

// failing is an upstream that answers every request with status.
func failing(t *testing.T, status int, calls *atomic.Int64) string {
	t.Helper()
	return serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"message":"no","type":"server_error","code":null}}`))
	}))
}

// TestFailoverStatus moves on after a 5xx or a 429, and relays the last upstream's
// answer whatever it is.
func TestFailoverStatus(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var calls atomic.Int64
			base, up := startSim(t, sim.Config{Seed: 1})
			c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
				{Name: "bad", BaseURL: failing(t, status, &calls), Models: []string{"gpt-4o-mini"}},
				{Name: "live", BaseURL: base},
			}})
			_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			})
			if err != nil || calls.Load() != 1 || up.Stats().OK != 1 {
				t.Fatalf("err %v, bad upstream called %d times, live answered %d", err, calls.Load(), up.Stats().OK)
			}
			// With no other upstream, the failure is relayed as it is.
			only, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "bad", BaseURL: failing(t, status, &calls)}}})
			_, err = only.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			})
			if statusOf(err) != status {
				t.Fatalf("err = %v, want status %d", err, status)
			}
		})
	}
}

// TestFallbackModel sends the fallback model to its upstream when the model's own
// upstream fails.
func TestFallbackModel(t *testing.T) {
	var calls atomic.Int64
	got := make(chan string, 1)
	live := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","object":"chat.completion","model":"deepseek-chat","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`))
	}))
	_, _, srv := startGateway(t, gateway.Config{
		Upstreams: []gateway.Upstream{
			{Name: "openai", BaseURL: failing(t, http.StatusServiceUnavailable, &calls), Models: []string{"gpt-4o-mini"}},
			{Name: "deepseek", BaseURL: live, Models: []string{"deepseek-chat"}},
		},
		Fallbacks: map[string][]string{"gpt-4o-mini": {"deepseek-chat"}},
	})
	resp := post(t, srv.URL, "/v1/chat/completions", clientKey, `{"model":"gpt-4o-mini","messages":[]}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Sluice-Upstream") != "deepseek" {
		t.Fatalf("status %d from %q", resp.StatusCode, resp.Header.Get("X-Sluice-Upstream"))
	}
	if body := <-got; body != `{"model":"deepseek-chat","messages":[]}` {
		t.Fatalf("fallback body %s", body)
	}
}

// TestNoFailoverAfterFirstByte never sends a request again once its answer started: a
// stream that breaks after its first event ends the client's stream with an error, and
// the second upstream is never asked.
func TestNoFailoverAfterFirstByte(t *testing.T) {
	broken := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // the connection breaks mid-stream
		}
	}))
	var second atomic.Int64
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
		{Name: "broken", BaseURL: broken, Models: []string{"gpt-4o-mini"}},
		{Name: "second", BaseURL: failing(t, http.StatusOK, &second)},
	}})
	stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	n := 0
	for stream.Next() {
		n++
	}
	if n != 1 || second.Load() != 0 {
		t.Fatalf("%d chunks relayed, second upstream asked %d times", n, second.Load())
	}
}

// TestUpstreamWithoutStreamOptions asks again without stream_options an upstream that
// refuses them, and stops adding them there.
func TestUpstreamWithoutStreamOptions(t *testing.T) {
	var refused, streamed atomic.Int64
	up := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "stream_options") {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}`))
			return
		}
		streamed.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n"))
	}))
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "old", BaseURL: up}}})
	for i := range 2 {
		stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
			Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		n := 0
		for stream.Next() {
			n++
		}
		if err := stream.Err(); err != nil || n != 1 {
			t.Fatalf("stream %d: %d chunks, %v", i, n, err)
		}
	}
	if refused.Load() != 1 || streamed.Load() != 2 {
		t.Fatalf("refused %d times, streamed %d", refused.Load(), streamed.Load())
	}
}
