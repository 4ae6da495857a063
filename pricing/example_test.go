package pricing_test

import (
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/pricing"
)

func Example() {
	p, ok := pricing.Default().Lookup("openai/gpt-4o-mini-2024-07-18")
	if !ok {
		fmt.Println("no price")
		return
	}
	u := sluice.Usage{PromptTokens: 1_000_000, CachedTokens: 200_000, CompletionTokens: 100_000}
	fmt.Printf("%s online: $%.4f\n", p.Model, p.Cost(u, false))
	fmt.Printf("%s batch:  $%.4f\n", p.Model, p.Cost(u, true))
	// Output:
	// gpt-4o-mini online: $0.1950
	// gpt-4o-mini batch:  $0.0975
}

func ExampleLoad() {
	extra, err := pricing.Load(strings.NewReader(`
prices:
  - {model: my-finetune, input: 0.30, output: 1.20, date: 2025-10-01, source: "our contract"}
  - {model: gpt-4o-mini, input: 0.12, output: 0.48, source: "negotiated"}
aliases:
  prod-model: my-finetune
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	t := pricing.Default().Merge(extra)
	for _, name := range []string{"prod-model", "gpt-4o-mini", "gpt-4o"} {
		p, _ := t.Lookup(name)
		fmt.Printf("%s: %s $%.2f in, $%.2f out (%s)\n", name, p.Model, p.Input, p.Output, p.Source)
	}
	// Output:
	// prod-model: my-finetune $0.30 in, $1.20 out (our contract)
	// gpt-4o-mini: gpt-4o-mini $0.12 in, $0.48 out (negotiated)
	// gpt-4o: gpt-4o $2.50 in, $10.00 out (https://platform.openai.com/docs/pricing)
}
