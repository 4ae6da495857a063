package tokens_test

import (
	"encoding/json"
	"fmt"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/tokens"
)

func ExampleForModel() {
	c := tokens.ForModel("openai/gpt-4o-mini-2024-07-18")
	fmt.Println(c.Name(), c.Count("hello world"))
	fmt.Println(tokens.ForModel("gpt-4-turbo").Name())
	fmt.Println(tokens.ForModel("deepseek-chat").Name()) // not OpenAI's: an approximation
	// Output:
	// o200k_base 2
	// cl100k_base
	// o200k_base
}

func ExampleCodec_Truncate() {
	prefix, n := tokens.ForModel("gpt-4o").Truncate("The quick brown fox jumps over the lazy dog.", 4)
	fmt.Printf("%q %d\n", prefix, n)
	// Output: "The quick brown fox" 4
}

func ExampleEstimator_Estimate() {
	req := &sluice.Request{
		CustomID: "request-1",
		Method:   "POST",
		URL:      sluice.EndpointChatCompletions,
		Body:     json.RawMessage(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}],"max_tokens":50,"n":2}`),
	}
	est, err := tokens.Default().Estimate(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	// 3 tokens for the message, 1 for its role, 2 for "hello world", 3 to prime the reply.
	fmt.Println(est.Model, est.PromptTokens, est.MaxOutputTokens, est.Reserve())

	req.Body = json.RawMessage(`{"model":"gpt-4o-mini","messages":{"role":"user"}}`)
	_, err = tokens.Default().Estimate(req)
	fmt.Println(err)
	// Output:
	// gpt-4o-mini 9 100 109
	// messages: want an array, got object
}
