package estimate

import (
	"errors"
	"fmt"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/pricing"
)

// DefaultUnboundedOutput is the output, in tokens, that an estimate counts for a request
// that sets no output bound (no max_tokens, max_completion_tokens or max_output_tokens)
// when earlier jobs of its model give no mean: 256, the guess the engine's budgets
// reserve for such a request before its first answer.
const DefaultUnboundedOutput = 256

// MaxInvalidShown is how many invalid lines a Report names (FirstInvalid); all are counted.
const MaxInvalidShown = 5

// Report is an estimate of a file of requests: what "sluice estimate" prints. Its JSON
// form (sluice estimate --json) is a stable interface: fields are added, never renamed or
// removed.
//
// The worst case (CostUSD) has every request write its full output bound; the expected
// figures have requests write the mean output of earlier jobs of their model, from the
// ledger. Cached prompt tokens are not foreseen: the figures price every prompt token at
// the full input price.
type Report struct {
	Input string `json:"input"`
	// Requests counts the valid request lines, InvalidLines the others (counted in no
	// other figure); FirstInvalid names the first few of them.
	Requests     int64         `json:"requests"`
	InvalidLines int64         `json:"invalid_lines"`
	FirstInvalid []InvalidLine `json:"first_invalid"`

	InputTokens int64 `json:"input_tokens"`
	// OutputTokensBound sums the requests' output bounds (max_tokens, times n). Requests
	// that set none (UnboundedRequests) count the mean output of their model's history,
	// else DefaultOutputTokens.
	OutputTokensBound   int64 `json:"output_tokens_bound"`
	UnboundedRequests   int64 `json:"unbounded_requests"`
	DefaultOutputTokens int64 `json:"default_output_tokens"`
	// ExpectedOutputTokens is null when no model of the file has history; models without
	// history count their bound in it.
	ExpectedOutputTokens *int64 `json:"expected_output_tokens"`

	// CostUSD is the worst case of the priced models; CostUSD.Online is the figure a
	// spending threshold compares with. ExpectedCostUSD is null without history.
	CostUSD         USD  `json:"cost_usd"`
	ExpectedCostUSD *USD `json:"expected_cost_usd"`
	// CostComplete is false when some model has no known price: its tokens are counted,
	// its cost is not.
	CostComplete   bool     `json:"cost_complete"`
	UnpricedModels []string `json:"unpriced_models"`

	ByModel []*Model `json:"by_model"`
	// Compare is the same workload priced on other models (--compare), in the order given.
	Compare []*Comparison `json:"compare,omitempty"`
}

// USD is a cost in US dollars, sent online and through the provider's Batch API.
type USD struct {
	Online float64 `json:"online"`
	Batch  float64 `json:"batch"`
}

func (p *USD) add(q USD) { p.Online += q.Online; p.Batch += q.Batch }

// InvalidLine is an input line that is not a valid request.
type InvalidLine struct {
	Line  int64  `json:"line"`
	Error string `json:"error"`
}

// Model is the part of an estimate for the requests naming one model.
type Model struct {
	Model    string `json:"model"`
	Encoding string `json:"encoding"`
	// Approximate is true for a model that is not OpenAI's: its own tokenizer is not
	// available offline, and its prompts are counted with Encoding instead.
	Approximate       bool  `json:"approximate"`
	Requests          int64 `json:"requests"`
	InputTokens       int64 `json:"input_tokens"`
	OutputTokensBound int64 `json:"output_tokens_bound"`
	UnboundedRequests int64 `json:"unbounded_requests"`
	// HistoryRequests is how many done requests of earlier jobs the expectation is drawn
	// from, and HistoryMeanOutput their mean completion tokens (null without history).
	HistoryRequests      int64    `json:"history_requests"`
	HistoryMeanOutput    *float64 `json:"history_mean_output_tokens"`
	ExpectedOutputTokens *int64   `json:"expected_output_tokens"`
	// PricedAs is the price table's entry for the model ("" without a price, and then
	// CostUSD and ExpectedCostUSD are null).
	PricedAs        string `json:"priced_as"`
	CostUSD         *USD   `json:"cost_usd"`
	ExpectedCostUSD *USD   `json:"expected_cost_usd"`

	mean     float64 // HistoryMeanOutput, when hasMean
	hasMean  bool
	expected float64 // expected output tokens, summed unrounded
}

// Comparison is the file's workload priced on another model: its prompts counted with
// that model's tokenizer, its output as written.
type Comparison struct {
	Model                string `json:"model"`
	PricedAs             string `json:"priced_as"`
	Encoding             string `json:"encoding"`
	Approximate          bool   `json:"approximate"`
	InputTokens          int64  `json:"input_tokens"`
	OutputTokensBound    int64  `json:"output_tokens_bound"`
	ExpectedOutputTokens *int64 `json:"expected_output_tokens"`
	CostUSD              USD    `json:"cost_usd"`
	ExpectedCostUSD      *USD   `json:"expected_cost_usd"`

	price pricing.Price
}

// Config is what an estimate needs besides its input. The zero Config prices nothing and
// has no history.
type Config struct {
	// Prices prices the models; nil prices none.
	Prices *pricing.Table
	// History is the usage of earlier jobs by model (sqlite.Store.ModelHistory, postgres.Store.ModelHistory); nil or
	// empty means none.
	History map[string]sluice.ModelStats
	// Compare lists models to price the workload on; each must have a price in Prices
	// (else Read returns a *NoPriceError).
	Compare []string
}

// NoPriceError is a model to compare with (Config.Compare) that has no price.
type NoPriceError struct{ Model string }

func (e *NoPriceError) Error() string { return fmt.Sprintf("estimate: no price for model %q", e.Model) }

// ErrOverBudget means an estimate's worst case does not fit in a budget.
var ErrOverBudget = errors.New("estimate: over budget")

// Fits reports whether the estimate's worst case fits in b: nil when it does, else an
// error wrapping ErrOverBudget that says by how much. Tokens count the prompts and the
// output bounds; the cost is the online one, or the Batch API's when batch is true. As in
// the engine's budgets, a zero field of b is no cap, and models without a price cost 0
// (a cost cap does not hold them back; Report.UnpricedModels names them).
func (r *Report) Fits(b sluice.Budget, batch bool) error {
	cost, how := r.CostUSD.Online, "online"
	if batch {
		cost, how = r.CostUSD.Batch, "through the Batch API"
	}
	tokens := addSat(r.InputTokens, r.OutputTokensBound)
	switch {
	case b.MaxTokens > 0 && tokens > b.MaxTokens:
		return fmt.Errorf("%w: up to %d tokens, above the cap of %d", ErrOverBudget, tokens, b.MaxTokens)
	case b.MaxCost > 0 && cost > b.MaxCost:
		return fmt.Errorf("%w: up to $%.4f %s, above the cap of $%.4f", ErrOverBudget, cost, how, b.MaxCost)
	}
	return nil
}
