package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-llm/sluice/internal/testutil"
)

// TestServeGateway runs the official SDK against sluice serve's online endpoints over
// the simulator: chat (streamed and not), embeddings and models; the online usage then
// shows in /v1/usage, and a key past its token budget gets 429 insufficient_quota.
func TestServeGateway(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "serve.yaml")
	err := os.WriteFile(config, []byte(`upstreams:
  - name: default
    base_url: sim
budgets:
  bob: {max_tokens: 60, period: daily}
gateway:
  aliases: {fast: gpt-4o-mini}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "alice=sk-alice-key,bob=sk-bob-key", "--store", filepath.Join(dir, "s.db"), "--config", config)
	ctx := context.Background()
	alice := openai.NewClient(option.WithBaseURL(s.base+"/v1/"), option.WithAPIKey("sk-alice-key"), option.WithMaxRetries(0))
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hi")}

	chat, err := alice.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: msgs, User: openai.String("u-1")})
	if err != nil || len(chat.Choices) != 1 {
		t.Fatalf("chat: %v %+v", err, chat)
	}
	stream := alice.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "fast", Messages: msgs})
	n := 0
	for stream.Next() {
		n++
	}
	if err := stream.Err(); err != nil || n == 0 {
		t.Fatalf("stream: %d chunks, %v", n, err)
	}
	emb, err := alice.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}})
	if err != nil || len(emb.Data) != 1 {
		t.Fatalf("embeddings: %v", err)
	}
	models, err := alice.Models.List(ctx)
	if err != nil || len(models.Data) == 0 {
		t.Fatalf("models: %v", err)
	}
	// The batch API is still there beside the gateway.
	if _, err := alice.Batches.List(ctx, openai.BatchListParams{}); err != nil {
		t.Fatalf("batches: %v", err)
	}

	// Bob's budget of 60 tokens holds one small request with max_tokens 20, not a second.
	bob := openai.NewClient(option.WithBaseURL(s.base+"/v1/"), option.WithAPIKey("sk-bob-key"), option.WithMaxRetries(0))
	small := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: msgs, MaxTokens: openai.Int(20)}
	if _, err := bob.Chat.Completions.New(ctx, small); err != nil {
		t.Fatalf("bob's first request: %v", err)
	}
	_, err = bob.Chat.Completions.New(ctx, small)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "insufficient_quota" {
		t.Fatalf("bob past his budget: err = %v, want 429 insufficient_quota", err)
	}

	// Online usage is in the ledger once the gateway writes it: /v1/usage shows it per user,
	// as requests, not batches. The writer runs every second: poll for it.
	usage := testutil.Poll(t, 10*time.Second, 50*time.Millisecond, func() (usageAnswer, error) {
		return getUsage(t, s.base, "sk-alice-key"), nil
	}, func(u usageAnswer) bool { return u.Requests >= 3 })
	if usage.Usage.TotalTokens == 0 || usage.Batches != 0 || usage.Requests != 3 {
		t.Fatalf("alice's usage: %+v, want tokens, no batch and 3 requests", usage)
	}
	users := map[string]int64{}
	for _, u := range usage.ByUser {
		users[u.User] = u.Requests
	}
	if users["u-1"] != 1 {
		t.Fatalf("user u-1's usage: %+v, want 1 request", usage.ByUser)
	}
}

type usageAnswer struct {
	Usage struct {
		TotalTokens int64 `json:"total_tokens"`
	} `json:"usage"`
	Batches  int64 `json:"batches"`
	Requests int64 `json:"requests"`
	ByUser   []struct {
		User     string `json:"user"`
		Requests int64  `json:"requests"`
	} `json:"by_user"`
}

func getUsage(t *testing.T, base, key string) usageAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/usage", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u usageAnswer
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		t.Fatal(err)
	}
	return u
}
