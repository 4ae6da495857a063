package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/metrics"
	"github.com/sluice-llm/sluice/pricing"
)

// report is the final report of a job. Its JSON form (--json) is a stable interface:
// fields are added, never renamed or removed.
type report struct {
	Job        string `json:"job"`
	State      string `json:"state"`
	Error      string `json:"error,omitempty"`
	Input      string `json:"input"`
	Output     string `json:"output,omitempty"`
	ErrorsFile string `json:"errors_file,omitempty"`
	BaseURL    string `json:"base_url"`

	Requests       requestCounts    `json:"requests"`
	FailuresByCode map[string]int64 `json:"failures_by_code"`
	Attempts       int64            `json:"attempts"`
	Retries        int64            `json:"retries"`
	Throttled      int64            `json:"throttled"`
	// Repaid counts requests sent again after a crash (or a ledger failure) left them in
	// flight unrecorded: their first answer may have been paid for too.
	Repaid int64 `json:"repaid"`

	Tokens tokenCounts `json:"tokens"`
	// CostUSD is the cost of the models with a known price; CostComplete is false when
	// some model had none (its tokens are in Tokens but not in CostUSD).
	CostUSD        float64      `json:"cost_usd"`
	CostComplete   bool         `json:"cost_complete"`
	UnpricedModels []string     `json:"unpriced_models"`
	ByModel        []modelUsage `json:"by_model"`

	LatencyMS latencyMS `json:"latency_ms"`
	// TTFTMS and TokensPerSecond are the time to first token of this run's streamed
	// answers and the output speed of its answers (observe.go); absent when unknown.
	TTFTMS          *metrics.Percentiles `json:"ttft_ms,omitempty"`
	TokensPerSecond *metrics.Percentiles `json:"tokens_per_second,omitempty"`
	WallSeconds     float64              `json:"wall_seconds"`
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
	Batch *batchSavings `json:"batch,omitempty"`
}

// batchSavings splits a job's usage and cost between its batches and its online
// requests, and prices the whole at online prices for comparison.
type batchSavings struct {
	Parts            int         `json:"parts"`
	Rounds           int         `json:"rounds"`
	BatchTokens      tokenCounts `json:"batch_tokens"`
	OnlineTokens     tokenCounts `json:"online_tokens"`
	BatchCostUSD     float64     `json:"batch_cost_usd"`
	OnlineCostUSD    float64     `json:"online_cost_usd"`
	AllOnlineCostUSD float64     `json:"all_online_cost_usd"`
	SavedUSD         float64     `json:"saved_usd"`
}

// partLister is a store that keeps the parts of Batch API jobs.
type partLister interface {
	Parts(ctx context.Context, jobID string) ([]*sluice.Part, error)
}

type requestCounts struct {
	Total    int64 `json:"total"`
	Done     int64 `json:"done"`
	Failed   int64 `json:"failed"`
	Pending  int64 `json:"pending"`
	InFlight int64 `json:"in_flight"`
}

type tokenCounts struct {
	Prompt     int64 `json:"prompt"`
	Completion int64 `json:"completion"`
	Cached     int64 `json:"cached"`
	Total      int64 `json:"total"`
}

type modelUsage struct {
	Model    string      `json:"model"`
	Requests int64       `json:"requests"`
	Tokens   tokenCounts `json:"tokens"`
	CostUSD  *float64    `json:"cost_usd"` // null when the model has no known price
}

type latencyMS struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

func tokensOf(u sluice.Usage) tokenCounts {
	return tokenCounts{Prompt: u.PromptTokens, Completion: u.CompletionTokens, Cached: u.CachedTokens, Total: u.Total()}
}

// addRun adds what only the run knows, not the ledger: the upstream's faults and the
// answers whose usage sluice counted.
func (r *report) addRun(p sluice.Progress) {
	r.UpstreamFaults, r.LastError, r.UsageCounted = p.Faults, p.LastError, p.UsageCounted
}

// buildReport summarises a job from its ledger.
func buildReport(ctx context.Context, st sluice.Store, job *sluice.Job, prices *pricing.Table) (*report, error) {
	stats, err := st.Stats(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job.ID, err)
	}
	o, err := decodeOptions(job)
	if err != nil {
		return nil, err
	}
	r := &report{
		Job: job.ID, State: string(job.State), Error: job.Error,
		Input: job.Input, Output: o.Output, ErrorsFile: o.Errors, BaseURL: o.BaseURL,
		Requests: requestCounts{
			Total: stats.Total, Done: stats.Done, Failed: stats.Failed,
			Pending: stats.Pending, InFlight: stats.InFlight,
		},
		FailuresByCode: stats.FailuresByCode,
		Attempts:       stats.Attempts,
		Retries:        stats.Retries,
		Throttled:      stats.Throttled,
		Repaid:         stats.Repaid,
		Tokens:         tokensOf(stats.Usage),
		CostComplete:   true,
		UnpricedModels: []string{},
		ByModel:        []modelUsage{},
		LatencyMS: latencyMS{
			P50: ms(stats.LatencyP50), P95: ms(stats.LatencyP95), P99: ms(stats.LatencyP99),
		},
		WallSeconds: job.Elapsed.Seconds(),
	}
	if r.FailuresByCode == nil {
		r.FailuresByCode = map[string]int64{}
	}
	viaBatch := map[string]sluice.Usage{} // usage of requests done through batches, by model
	if pl, ok := st.(partLister); ok && o.Mode != modeOnline {
		parts, err := pl.Parts(ctx, job.ID)
		if err != nil {
			return nil, err
		}
		r.Batch = &batchSavings{Parts: len(parts)}
		var all sluice.Usage
		for _, p := range parts {
			viaBatch[p.Model] = viaBatch[p.Model].Add(p.Usage)
			all = all.Add(p.Usage)
			r.Batch.Rounds = max(r.Batch.Rounds, p.Round)
		}
		r.Batch.BatchTokens = tokensOf(all)
		r.Batch.OnlineTokens = tokensOf(minus(stats.Usage, all))
	}
	for _, m := range stats.ByModel {
		mu := modelUsage{Model: m.Model, Requests: m.Requests, Tokens: tokensOf(m.Usage)}
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

// print writes the report for a person to read.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\njob %s: %s\n", r.Job, r.State)
	if r.Error != "" && r.State != string(sluice.JobCompleted) {
		fmt.Fprintf(w, "  reason: %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  requests\t%d total, %d done, %d failed", r.Requests.Total, r.Requests.Done, r.Requests.Failed)
	if left := r.Requests.Pending + r.Requests.InFlight; left > 0 {
		fmt.Fprintf(tw, ", %d not finished", left)
	}
	fmt.Fprintln(tw)
	if len(r.FailuresByCode) > 0 {
		codes := slices.Sorted(maps.Keys(r.FailuresByCode))
		parts := make([]string, 0, len(codes))
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%s: %d", c, r.FailuresByCode[c]))
		}
		fmt.Fprintf(tw, "  failures\t%s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(tw, "  attempts\t%d (%d retries, %d answered 429)\n", r.Attempts, r.Retries, r.Throttled)
	if r.Repaid > 0 {
		fmt.Fprintf(tw, "  re-paid\t≤ %d requests sent again after a crash left them in flight (their first answer may have been paid)\n", r.Repaid)
	}
	fmt.Fprintf(tw, "  tokens\t%d in (%d cached), %d out\n", r.Tokens.Prompt, r.Tokens.Cached, r.Tokens.Completion)
	if r.UsageCounted > 0 {
		fmt.Fprintf(tw, "  \tusage of %d answers counted by sluice (the upstream sent none)\n", r.UsageCounted)
	}
	if r.UpstreamFaults > 0 {
		fmt.Fprintf(tw, "  upstream faults\t%d, last: %s\n", r.UpstreamFaults, r.LastError)
	}
	switch {
	case len(r.ByModel) == 0:
	case r.CostComplete:
		fmt.Fprintf(tw, "  cost\t$%.4f\n", r.CostUSD)
	case r.CostUSD > 0:
		fmt.Fprintf(tw, "  cost\t$%.4f, plus tokens of models with no known price: %s (tokens only)\n", r.CostUSD, strings.Join(r.UnpricedModels, ", "))
	default:
		fmt.Fprintf(tw, "  cost\tunknown: no price for %s (tokens only; --prices FILE adds prices)\n", strings.Join(r.UnpricedModels, ", "))
	}
	if len(r.ByModel) > 1 {
		for _, m := range r.ByModel {
			cost := "no price"
			if m.CostUSD != nil {
				cost = fmt.Sprintf("$%.4f", *m.CostUSD)
			}
			fmt.Fprintf(tw, "    %s\t%d requests, %d in, %d out, %s\n", m.Model, m.Requests, m.Tokens.Prompt, m.Tokens.Completion, cost)
		}
	}
	if b := r.Batch; b != nil {
		fmt.Fprintf(tw, "  batch API\t%d parts in %d rounds: %d tokens, $%.4f; online: %d tokens, $%.4f\n",
			b.Parts, b.Rounds, b.BatchTokens.Total, b.BatchCostUSD, b.OnlineTokens.Total, b.OnlineCostUSD)
		fmt.Fprintf(tw, "  vs all online\t$%.4f: saved $%.4f\n", b.AllOnlineCostUSD, b.SavedUSD)
	}
	if r.LatencyMS.P50 > 0 {
		fmt.Fprintf(tw, "  latency\tp50 %s, p95 %s, p99 %s\n", fmtMS(r.LatencyMS.P50), fmtMS(r.LatencyMS.P95), fmtMS(r.LatencyMS.P99))
	}
	r.printSpeeds(tw)
	fmt.Fprintf(tw, "  wall time\t%s (%.1f requests/s)\n", (time.Duration(r.WallSeconds * float64(time.Second))).Round(time.Millisecond), r.Throughput)
	if r.Output != "" {
		fmt.Fprintf(tw, "  output\t%s\n", r.Output)
	}
	if r.ErrorsFile != "" && r.Requests.Failed > 0 {
		fmt.Fprintf(tw, "  errors\t%s\n", r.ErrorsFile)
	}
	tw.Flush()
}

func fmtMS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fs", v/1000)
	}
	return fmt.Sprintf("%.0fms", v)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
