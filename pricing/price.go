package pricing

import "github.com/sluice-llm/sluice"

// Price is what one model costs, in US dollars per million tokens. A zero price means the
// provider does not offer it (see the package documentation).
type Price struct {
	// Model is the model's name in the table.
	Model string `json:"model" yaml:"model"`
	// Input is the price of prompt tokens.
	Input float64 `json:"input" yaml:"input"`
	// CachedInput is the price of prompt tokens read from the provider's prompt cache;
	// 0 when the provider gives no cache discount.
	CachedInput float64 `json:"cached_input" yaml:"cached_input"`
	// Output is the price of completion tokens, reasoning tokens included.
	Output float64 `json:"output" yaml:"output"`
	// BatchInput and BatchOutput are the prices through the provider's Batch API; 0 when
	// it has none.
	BatchInput  float64 `json:"batch_input" yaml:"batch_input"`
	BatchOutput float64 `json:"batch_output" yaml:"batch_output"`
	// Date is when the figures were checked against Source, as YYYY-MM-DD; "" if unknown.
	Date string `json:"date" yaml:"date"`
	// Source is where the figures come from, usually the provider's pricing page.
	Source string `json:"source" yaml:"source"`
}

// Cost is what u costs in US dollars, sent online or, when batch is true, through the
// provider's Batch API.
//
// Cached tokens are the part of the prompt served from the prompt cache: they cost
// CachedInput, or Input when there is no cache price. In a batch, prompt and completion
// tokens cost BatchInput and BatchOutput, each falling back to the online price when the
// provider has no batch price; cached tokens get the batch discount of the input price
// (CachedInput × BatchInput / Input), which is how OpenAI, Anthropic and Google bill
// cache reads in a batch.
//
// Negative token counts count as 0, and cached tokens beyond the prompt as the prompt.
func (p Price) Cost(u sluice.Usage, batch bool) float64 {
	prompt := max(u.PromptTokens, 0)
	cached := min(max(u.CachedTokens, 0), prompt)
	completion := max(u.CompletionTokens, 0)

	in, out := p.Input, p.Output
	cachedIn := p.CachedInput
	if cachedIn == 0 {
		cachedIn = in
	}
	if batch {
		if p.BatchInput > 0 {
			if p.Input > 0 {
				cachedIn *= p.BatchInput / p.Input
			} else {
				cachedIn = p.BatchInput
			}
			in = p.BatchInput
		}
		if p.BatchOutput > 0 {
			out = p.BatchOutput
		}
	}
	return (float64(prompt-cached)*in + float64(cached)*cachedIn + float64(completion)*out) / 1e6
}
