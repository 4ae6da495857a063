package estimate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/estimate"
	"github.com/sluice-llm/sluice/pricing"
)

// Estimate two requests before sending them, and hold their worst case against a budget.
func ExampleRead() {
	input := strings.NewReader(`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}],"max_tokens":100}}
{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}],"max_tokens":100}}
`)
	rep, err := estimate.Read(context.Background(), "requests.jsonl", input, estimate.Config{Prices: pricing.Default()})
	if err != nil {
		fmt.Println(err)
		return
	}
	m := rep.ByModel[0]
	fmt.Printf("%s: %d requests, %d prompt tokens, up to %d output tokens (%s)\n",
		m.Model, m.Requests, m.InputTokens, m.OutputTokensBound, m.Encoding)
	err = rep.Fits(sluice.Budget{MaxTokens: 200}, false)
	fmt.Println(errors.Is(err, estimate.ErrOverBudget), err)
	// Output:
	// gpt-4o-mini: 2 requests, 18 prompt tokens, up to 200 output tokens (o200k_base)
	// true estimate: over budget: up to 218 tokens, above the cap of 200
}
