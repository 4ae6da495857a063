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
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/report"
)

// buildReport summarises a job from its ledger, with what the job's saved settings say
// of its files, upstream and mode.
func buildReport(ctx context.Context, st sluice.Store, job *sluice.Job, prices *pricing.Table) (*report.Job, error) {
	o, err := decodeOptions(job)
	if err != nil {
		return nil, err
	}
	return report.Build(ctx, st, job, prices, report.Settings{
		Output: o.Output, ErrorsFile: o.Errors, BaseURL: o.BaseURL, Batch: o.Mode != modeOnline,
	})
}

// printJobReport writes the report for a person to read.
func printJobReport(w io.Writer, r *report.Job) {
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
	printSpeeds(tw, r)
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
