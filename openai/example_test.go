package openai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
)

func ExampleClient_Do() {
	// A stand-in for an OpenAI-compatible API.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_123")
		w.Header().Set("X-Ratelimit-Limit-Requests", "500")
		w.Header().Set("X-Ratelimit-Remaining-Requests", "499")
		w.Header().Set("X-Ratelimit-Reset-Requests", "120ms")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12}}`)
	}))
	defer srv.Close()

	client, err := openai.New(openai.Config{
		BaseURL:    srv.URL + "/v1",
		APIKey:     "sk-example",
		HTTPClient: &http.Client{Transport: openai.NewTransport(16)},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.Do(ctx, &sluice.Request{
		CustomID: "request-1",
		Method:   "POST",
		URL:      sluice.EndpointChatCompletions,
		Body:     []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`),
	})
	var ue *sluice.UpstreamError
	switch {
	case errors.As(err, &ue) && ue.Retryable():
		fmt.Println("try again after", ue.RetryAfter, ":", ue)
	case err != nil:
		fmt.Println("failed:", err)
	default:
		fmt.Println(resp.StatusCode, resp.RequestID, resp.Usage.Total(), "tokens")
		fmt.Println("limit", resp.Limits.LimitRequests, "remaining", resp.Limits.RemainingRequests, "reset in", resp.Limits.ResetRequests)
	}
	// Output:
	// 200 req_123 21 tokens
	// limit 500 remaining 499 reset in 120ms
}

func ExampleNew() {
	// A gateway that serves the OpenAI API under /api/openai rather than /v1: requests
	// for /v1/chat/completions go to https://gateway.example/api/openai/chat/completions.
	client, err := openai.New(openai.Config{
		BaseURL: "https://gateway.example/api/openai/",
		APIKey:  "sk-example",
		Header:  http.Header{"OpenAI-Organization": {"org-123"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(client.BaseURL())
	fmt.Println(client)
	// Output:
	// https://gateway.example/api/openai
	// openai.Client(https://gateway.example/api/openai)
}
