// Package report summarises a job from its ledger: requests by state, failures by code,
// attempts, tokens and cost by model, latency, and for jobs run through a provider's
// Batch API what the batches saved. [Build] returns a [Job], plain data with a stable JSON
// form, that the commands print as text or JSON and a dashboard can render as it likes.
package report

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/pricing"
)

// Job is the report of a job: what "sluice run", "sluice batch" and "sluice jobs show"
// print at its end, and what a dashboard renders. It is plain data: every figure is a
// field, and a renderer needs nothing else. Its JSON form (the commands' --json) is a
// stable interface: fields are added, never renamed or removed.
type Job struct {
	Job        string `json:"job"`
	State      string `json:"state"`
	Error      string `json:"error,omitempty"`
	Input      string `json:"input"`
	Output     string `json:"output,omitempty"`
	ErrorsFile string `json:"errors_file,omitempty"`
	BaseURL    string `json:"base_url"`

	Requests       Requests         `json:"requests"`
	FailuresByCode map[string]int64 `json:"failures_by_code"`
	Attempts       int64            `json:"attempts"`
	Retries        int64            `json:"retries"`
	Throttled      int64            `json:"throttled"`
	// Repaid counts requests sent again after a crash (or a ledger failure) left them in
	// flight unrecorded: their first answer may have been paid for too.
	Repaid int64 `json:"repaid"`

	Tokens Tokens `json:"tokens"`
	// CostUSD is the cost of the models with a known price; CostComplete is false when
	// some model had none (its tokens are in Tokens but not in CostUSD).
	CostUSD        float64      `json:"cost_usd"`
	CostComplete   bool         `json:"cost_complete"`
	UnpricedModels []string     `json:"unpriced_models"`
	ByModel        []ModelUsage `json:"by_model"`

	LatencyMS Latency `json:"latency_ms"`
	// TTFTMS is the time to first token of a run's streamed answers in milliseconds, and
	// TokensPerSecond the completion tokens of its answers over their duration; nil when
	// not known (the ledger keeps neither: the command that ran the job adds them).
	TTFTMS          *Percentiles `json:"ttft_ms,omitempty"`
	TokensPerSecond *Percentiles `json:"tokens_per_second,omitempty"`
	WallSeconds     float64      `json:"wall_seconds"`
	// Throughput is final requests per second of wall time.
	Throughput float64 `json:"throughput_rps"`

	// UpstreamFaults counts this run's attempts that got no usable answer (refused,
	// reset, 5xx, a broken body); LastError is the last one's message.
	UpstreamFaults int64  `json:"upstream_faults"`
	LastError      string `json:"last_error,omitempty"`
	// UsageCounted counts this run's answers that came without usage (a stream not
	// asked for it, say), whose tokens sluice counted itself.
	UsageCounted int64 `json:"usage_counted_by_sluice"`

	// Batch compares a job run through a provider's Batch API (sluice batch, run --mode
	// hybrid) with running all of it online; nil for other jobs.
	Batch *BatchSavings `json:"batch,omitempty"`
}

// BatchSavings splits a job's usage and cost between its batches and its online
// requests, and prices the whole at online prices for comparison.
type BatchSavings struct {
	Parts            int     `json:"parts"`
	Rounds           int     `json:"rounds"`
	BatchTokens      Tokens  `json:"batch_tokens"`
	OnlineTokens     Tokens  `json:"online_tokens"`
	BatchCostUSD     float64 `json:"batch_cost_usd"`
	OnlineCostUSD    float64 `json:"online_cost_usd"`
	AllOnlineCostUSD float64 `json:"all_online_cost_usd"`
	SavedUSD         float64 `json:"saved_usd"`
}

// partLister is a store that keeps the parts of Batch API jobs.
type partLister interface {
	Parts(ctx context.Context, jobID string) ([]*sluice.Part, error)
}

// Requests counts a job's requests by state.
type Requests struct {
	Total    int64 `json:"total"`
	Done     int64 `json:"done"`
	Failed   int64 `json:"failed"`
	Pending  int64 `json:"pending"`
	InFlight int64 `json:"in_flight"`
}

// Tokens counts tokens; Total is Prompt plus Completion (Cached is part of Prompt).
type Tokens struct {
	Prompt     int64 `json:"prompt"`
	Completion int64 `json:"completion"`
	Cached     int64 `json:"cached"`
	Total      int64 `json:"total"`
}

// ModelUsage is what the requests naming one model used and cost.
type ModelUsage struct {
	Model    string   `json:"model"`
	Requests int64    `json:"requests"`
	Tokens   Tokens   `json:"tokens"`
	CostUSD  *float64 `json:"cost_usd"` // null when the model has no known price
}

// Latency holds percentiles of the final attempts of done requests, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Percentiles are the 50th, 95th and 99th percentiles of some samples.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// TokensOf is the token counts of u.
func TokensOf(u sluice.Usage) Tokens {
	return Tokens{Prompt: u.PromptTokens, Completion: u.CompletionTokens, Cached: u.CachedTokens, Total: u.Total()}
}

// AddRun adds what only the run knows, not the ledger: the upstream's faults and the
// answers whose usage sluice counted.
func (r *Job) AddRun(p sluice.Progress) {
	r.UpstreamFaults, r.LastError, r.UsageCounted = p.Faults, p.LastError, p.UsageCounted
}

// Settings are what a report says of a job that its ledger does not hold: the job's
// saved settings, kept by the command that runs it.
type Settings struct {
	// Output and ErrorsFile are the job's output and error files ("" for none).
	Output, ErrorsFile string
	// BaseURL is the upstream the job runs against.
	BaseURL string
	// Batch is true for a job that runs through a provider's Batch API (sluice batch, run
	// --mode hybrid): the report then splits its usage between batches and online
	// requests, when the store keeps the parts.
	Batch bool
}

// Build summarises a job from its ledger in st, pricing its usage with prices (nil prices
// nothing: the cost is then unknown, and the models' tokens are still counted).
func Build(ctx context.Context, st sluice.Store, job *sluice.Job, prices *pricing.Table, s Settings) (*Job, error) {
	stats, err := st.Stats(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job.ID, err)
	}
	r := &Job{
		Job: job.ID, State: string(job.State), Error: job.Error,
		Input: job.Input, Output: s.Output, ErrorsFile: s.ErrorsFile, BaseURL: s.BaseURL,
		Requests: Requests{
			Total: stats.Total, Done: stats.Done, Failed: stats.Failed,
			Pending: stats.Pending, InFlight: stats.InFlight,
		},
		FailuresByCode: stats.FailuresByCode,
		Attempts:       stats.Attempts,
		Retries:        stats.Retries,
		Throttled:      stats.Throttled,
		Repaid:         stats.Repaid,
		Tokens:         TokensOf(stats.Usage),
		CostComplete:   true,
		UnpricedModels: []string{},
		ByModel:        []ModelUsage{},
		LatencyMS: Latency{
			P50: ms(stats.LatencyP50), P95: ms(stats.LatencyP95), P99: ms(stats.LatencyP99),
		},
		WallSeconds: job.Elapsed.Seconds(),
	}
	if r.FailuresByCode == nil {
		r.FailuresByCode = map[string]int64{}
	}
	viaBatch := map[string]sluice.Usage{} // usage of requests done through batches, by model
	if pl, ok := st.(partLister); ok && s.Batch {
		parts, err := pl.Parts(ctx, job.ID)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", job.ID, err)
		}
		r.Batch = &BatchSavings{Parts: len(parts)}
		var all sluice.Usage
		for _, p := range parts {
			viaBatch[p.Model] = viaBatch[p.Model].Add(p.Usage)
			all = all.Add(p.Usage)
			r.Batch.Rounds = max(r.Batch.Rounds, p.Round)
		}
		r.Batch.BatchTokens = TokensOf(all)
		r.Batch.OnlineTokens = TokensOf(minus(stats.Usage, all))
	}
	for _, m := range stats.ByModel {
		mu := ModelUsage{Model: m.Model, Requests: m.Requests, Tokens: TokensOf(m.Usage)}
		if p, ok := prices.Lookup(m.Model); ok {
			inBatch := viaBatch[m.Model]
			bc, oc := p.Cost(inBatch, true), p.Cost(minus(m.Usage, inBatch), false)
			c := bc + oc
			mu.CostUSD = &c
			r.CostUSD += c
			if r.Batch != nil {
				r.Batch.BatchCostUSD += bc
				r.Batch.OnlineCostUSD += oc
				r.Batch.AllOnlineCostUSD += p.Cost(m.Usage, false)
			}
		} else if m.Usage.Total() > 0 {
			r.CostComplete = false
			r.UnpricedModels = append(r.UnpricedModels, m.Model)
		}
		r.ByModel = append(r.ByModel, mu)
	}
	if r.Batch != nil {
		r.Batch.SavedUSD = r.Batch.AllOnlineCostUSD - r.CostUSD
		// A batch runs at the provider: the job took the time from submission on.
		r.WallSeconds = max(r.WallSeconds, job.UpdatedAt.Sub(job.CreatedAt).Seconds())
	}
	if r.WallSeconds > 0 {
		r.Throughput = float64(stats.Done+stats.Failed) / r.WallSeconds
	}
	return r, nil
}

// minus is u less v, field by field, never below zero.
func minus(u, v sluice.Usage) sluice.Usage {
	return sluice.Usage{
		PromptTokens:     max(0, u.PromptTokens-v.PromptTokens),
		CompletionTokens: max(0, u.CompletionTokens-v.CompletionTokens),
		CachedTokens:     max(0, u.CachedTokens-v.CachedTokens),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
