package pricing

import (
	"math"
	"testing"

	"github.com/sluice-llm/sluice"
)

func TestCost(t *testing.T) {
	t.Parallel()
	full := Price{Model: "full", Input: 2, CachedInput: 0.5, Output: 8, BatchInput: 1, BatchOutput: 4}
	noCache := Price{Model: "no-cache", Input: 2, Output: 8, BatchInput: 1, BatchOutput: 4}
	noBatch := Price{Model: "no-batch", Input: 0.28, CachedInput: 0.028, Output: 0.42}
	batchInOnly := Price{Model: "embed", Input: 0.02, BatchInput: 0.01}
	tests := []struct {
		name  string
		price Price
		usage sluice.Usage
		batch bool
		want  float64
	}{
		{"nothing", full, sluice.Usage{}, false, 0},
		{"prompt and completion", full, sluice.Usage{PromptTokens: 1_000_000, CompletionTokens: 500_000}, false, 2 + 4},
		{"cached tokens at the cache price", full, sluice.Usage{PromptTokens: 1_000_000, CachedTokens: 400_000, CompletionTokens: 0}, false, 0.6*2 + 0.4*0.5},
		{"cached tokens without a cache price cost the input price", noCache, sluice.Usage{PromptTokens: 1_000_000, CachedTokens: 400_000}, false, 2},
		{"batch prices", full, sluice.Usage{PromptTokens: 1_000_000, CompletionTokens: 1_000_000}, true, 1 + 4},
		{"batch cached tokens get the batch discount", full, sluice.Usage{PromptTokens: 1_000_000, CachedTokens: 1_000_000}, true, 0.25},
		{"batch cached without a cache price", noCache, sluice.Usage{PromptTokens: 1_000_000, CachedTokens: 500_000}, true, 1},
		{"batch without a batch price costs the online price", noBatch, sluice.Usage{PromptTokens: 2_000_000, CachedTokens: 1_000_000, CompletionTokens: 1_000_000}, true, 0.28 + 0.028 + 0.42},
		{"batch with only a batch input price", batchInOnly, sluice.Usage{PromptTokens: 3_000_000}, true, 0.03},
		{"small counts", full, sluice.Usage{PromptTokens: 1234, CachedTokens: 234, CompletionTokens: 56}, false, (1000*2 + 234*0.5 + 56*8) / 1e6},
		{"more cached than prompt tokens counts the prompt", full, sluice.Usage{PromptTokens: 100, CachedTokens: 1000}, false, 100 * 0.5 / 1e6},
		{"negative counts count as zero", full, sluice.Usage{PromptTokens: -5, CachedTokens: -1, CompletionTokens: -7}, false, 0},
		{"a free model", Price{Model: "free"}, sluice.Usage{PromptTokens: 1e9, CompletionTokens: 1e9}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.price.Cost(tt.usage, tt.batch); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("Cost(%+v, batch=%v) = %.12g, want %.12g", tt.usage, tt.batch, got, tt.want)
			}
		})
	}
}

func TestCostOfDefaultModels(t *testing.T) {
	t.Parallel()
	// Worked examples against the published prices: 10,000 requests of 1,000 prompt
	// tokens (half of them cached) and 200 completion tokens.
	u := sluice.Usage{PromptTokens: 10_000_000, CachedTokens: 5_000_000, CompletionTokens: 2_000_000}
	tests := []struct {
		model string
		batch bool
		want  float64
	}{
		{"gpt-4o-mini", false, 5*0.15 + 5*0.075 + 2*0.60},
		{"gpt-4o-mini", true, 5*0.075 + 5*0.0375 + 2*0.30},
		{"claude-sonnet-4-5-20250929", true, 5*1.50 + 5*0.15 + 2*7.50},
		{"deepseek/deepseek-chat", true, 5*0.28 + 5*0.028 + 2*0.42},
		{"text-embedding-3-small", true, 10 * 0.01},
	}
	for _, tt := range tests {
		p, ok := Default().Lookup(tt.model)
		if !ok {
			t.Fatalf("no price for %s", tt.model)
		}
		if got := p.Cost(u, tt.batch); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s (batch=%v): cost %.6f, want %.6f", tt.model, tt.batch, got, tt.want)
		}
	}
}
