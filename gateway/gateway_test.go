package gateway_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/sluice-llm/sluice/gateway"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/sim"
)

// TestSDK runs the official SDK through the gateway: chat, streamed and not, embeddings,
// completions, responses and the model list.
func TestSDK(t *testing.T) {
	base, up := startSim(t, sim.Config{Seed: 1, APIKey: "sk-upstream-secret"})
	c, g, srv := startGateway(t, gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base, APIKey: "sk-upstream-secret"}},
		Aliases:   map[string]string{"fast": "gpt-4o-mini"},
	})
	ctx := context.Background()

	chat, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hi")},
		User: openai.String("u1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Choices) != 1 || chat.Choices[0].Message.Content == "" || chat.Usage.TotalTokens == 0 {
		t.Fatalf("chat answer: %+v", chat)
	}

	stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "fast", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Count to ten")},
	})
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		ch := stream.Current()
		if len(ch.Choices) == 0 {
			t.Fatalf("the client got a usage-only chunk it did not ask for: %+v", ch)
		}
		acc.AddChunk(ch)
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks < 2 || acc.Choices[0].Message.Content == "" {
		t.Fatalf("stream: %d chunks, %+v", chunks, acc.ChatCompletion)
	}

	emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
	})
	if err != nil || len(emb.Data) != 1 || len(emb.Data[0].Embedding) == 0 {
		t.Fatalf("embeddings: %v %+v", err, emb)
	}

	comp, err := c.Completions.New(ctx, openai.CompletionNewParams{
		Model: "gpt-3.5-turbo-instruct", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once")},
	})
	if err != nil || len(comp.Choices) != 1 {
		t.Fatalf("completions: %v %+v", err, comp)
	}

	resp, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hi")}})
	if err != nil || resp.OutputText() == "" || resp.Usage.OutputTokens == 0 {
		t.Fatalf("responses: %v %+v", err, resp)
	}

	models, err := c.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range models.Data {
		ids[m.ID] = true
	}
	if !ids["gpt-4o-mini"] || !ids["fast"] {
		t.Fatalf("models: %v", ids)
	}

	srv.Close() // the handlers count usage after the client has its answer
	stats := up.Stats()
	if stats.OK != 6 || stats.Unauthorized != 0 { // five answers and the model list
		t.Fatalf("upstream stats: %+v", stats)
	}
	var total int64
	for _, u := range g.Usage() {
		if u.Key != "alice" {
			t.Fatalf("usage of an unknown key: %+v", u)
		}
		total += u.Usage.Total()
	}
	if total == 0 {
		t.Fatal("no usage counted")
	}
}

// TestUnauthorized refuses a request without a client key, and never forwards it.
func TestUnauthorized(t *testing.T) {
	base, up := startSim(t, sim.Config{})
	_, _, srv := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base}}})
	bad := client(srv.URL, "sk-wrong")
	_, err := bad.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
	})
	if statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("err = %v, want 401", err)
	}
	if _, err := bad.Models.List(context.Background()); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("models: err = %v, want 401", err)
	}
	if n := up.Stats().Requests; n != 0 {
		t.Fatalf("the upstream got %d requests", n)
	}
}

// TestUnknownModel answers 404 model_not_found for a model no upstream serves.
func TestUnknownModel(t *testing.T) {
	base, _ := startSim(t, sim.Config{})
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base, Models: []string{"gpt-4o"}}}})
	_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "nope", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "model_not_found" {
		t.Fatalf("err = %v", err)
	}
}

// TestStreamFlushesEachEvent reads the first event of a slow stream before the stream
// ends: the gateway relays events as they come, never the whole stream at once.
func TestStreamFlushesEachEvent(t *testing.T) {
	release := make(chan struct{})
	up := http.NewServeMux()
	up.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
	})
	base := serveMux(t, up)
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "slow", BaseURL: base}}})
	stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
	})
	defer stream.Close()
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	if got := stream.Current().Choices[0].Delta.Content; got != "first" {
		t.Fatalf("first chunk %q", got)
	}
	close(release)
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestAliasRenamesModel sends the alias's target to the upstream, the rest of the body
// byte for byte.
func TestAliasRenamesModel(t *testing.T) {
	got := make(chan string, 1)
	up := http.NewServeMux()
	up.HandleFunc("POST /v1/embeddings", func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		_, _ = io.Copy(b, r.Body)
		got <- b.String()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`))
	})
	base := serveMux(t, up)
	_, _, srv := startGateway(t, gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "u", BaseURL: base}},
		Aliases:   map[string]string{"small": "text-embedding-3-small"},
	})
	resp := post(t, srv.URL, "/v1/embeddings", clientKey, `{"input": "a \"model\": b",  "model" : "small", "x":1}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if want := `{"input": "a \"model\": b",  "model" : "text-embedding-3-small", "x":1}`; <-got != want {
		t.Fatalf("upstream body differs from %s", want)
	}
}

// TestStreamUsageCounted counts a stream's usage, which the gateway asked for on the
// client's behalf, exactly as the upstream reported it.
func TestStreamUsageCounted(t *testing.T) {
	base, up := startSim(t, sim.Config{Seed: 1})
	c, g, srv := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base}}})
	stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Count to ten")},
		User: openai.String("streamer"),
	})
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	s := up.Stats()
	var got sluiceUsage
	for _, u := range g.Usage() {
		if u.User == "streamer" {
			got = sluiceUsage{u.Usage.PromptTokens, u.Usage.CompletionTokens}
		}
	}
	if want := (sluiceUsage{s.PromptTokens, s.CompletionTokens}); got != want || want.completion == 0 {
		t.Fatalf("usage counted %+v, upstream reported %+v", got, want)
	}
}

type sluiceUsage struct{ prompt, completion int64 }

// TestSlowStreamBehindServe relays a stream slower than serve's minimum response rate:
// its deadlines are per event, not by the average rate.
func TestSlowStreamBehindServe(t *testing.T) {
	up := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			if i > 0 {
				select {
				case <-time.After(300 * time.Millisecond): // a model writing slowly
				case <-r.Context().Done():
					return
				}
			}
			_, _ = w.Write([]byte("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"))
			w.(http.Flusher).Flush()
		}
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
	}))
	g, err := gateway.New(gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "slow", BaseURL: up}},
		Keys:      []gateway.Key{{Name: "alice", Hash: gateway.HashKey(clientKey)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = sluicehttp.NewHTTPServer(g.Handler(), sluicehttp.Limits{MinRate: 1 << 20, RateGrace: 100 * time.Millisecond}, nil)
	hs.Start()
	defer hs.Close()
	c := client(hs.URL, clientKey)
	stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
	})
	n := 0
	for stream.Next() {
		n++
	}
	if err := stream.Err(); err != nil || n != 3 {
		t.Fatalf("%d of 3 chunks, err %v", n, err)
	}
}

// TestResponsesStreamUsage reads a Responses stream's usage from its response.completed
// event, and passes every event on.
func TestResponsesStreamUsage(t *testing.T) {
	up := serveMux(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n" +
			"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"usage\":{\"input_tokens\":7,\"output_tokens\":3}}}\n\n"))
	}))
	c, g, srv := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{{Name: "u", BaseURL: up}}})
	stream := c.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{Model: "gpt-4o-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hi")}})
	var types []string
	for stream.Next() {
		types = append(types, stream.Current().Type)
	}
	if err := stream.Err(); err != nil || len(types) != 2 || types[1] != "response.completed" {
		t.Fatalf("events %v, err %v", types, err)
	}
	srv.Close()
	u := g.Usage()
	if len(u) != 1 || u[0].Usage.PromptTokens != 7 || u[0].Usage.CompletionTokens != 3 {
		t.Fatalf("usage %+v, want 7 prompt and 3 completion tokens", u)
	}
}
