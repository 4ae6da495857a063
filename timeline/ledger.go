package timeline

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/sluice-llm/sluice"
)

// FromLedger builds a job's timeline from its ledger, for a job run without a Recorder:
// each final request counts in the bucket of its finish time, with its last attempt's
// latency, its usage, and cost (nil: none). Throttled counts the 429s the requests met;
// the attempts before the last have no time of their own in the ledger, so they go in the
// final attempt's bucket, and nothing is known of the limiter or the breaker (no samples).
// It reads the whole job.
func FromLedger(ctx context.Context, st sluice.TimelineStore, jobID string, width time.Duration,
	cost func(model string, u sluice.Usage) float64) ([]sluice.TimelineBucket, error) {
	if width <= 0 {
		width = DefaultInterval
	}
	byStart := map[time.Time]*sluice.TimelineBucket{}
	err := st.Finished(ctx, jobID, func(f *sluice.Finished) error {
		start := f.At.UTC().Truncate(width)
		b := byStart[start]
		if b == nil {
			b = &sluice.TimelineBucket{Start: start, Width: width}
			byStart[start] = b
		}
		addFinished(b, f, cost)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("timeline from ledger: %w", err)
	}
	out := make([]sluice.TimelineBucket, 0, len(byStart))
	for _, b := range byStart {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// addFinished adds one final request to b.
func addFinished(b *sluice.TimelineBucket, f *sluice.Finished, cost func(string, sluice.Usage) float64) {
	retries := int64(f.Attempts - f.Throttled - 1)
	switch {
	case f.State == sluice.StateDone:
		b.Completed++
	case f.StatusCode == http.StatusTooManyRequests: // counted with the 429s below
		b.Failed++
		retries++
	default:
		b.Failed++
		addError(b, f.StatusCode, f.ErrorCode)
	}
	if f.Throttled > 0 {
		b.Throttled += int64(f.Throttled)
		if b.Errors == nil {
			b.Errors = map[string]int64{}
		}
		b.Errors[fmt.Sprint(http.StatusTooManyRequests)] += int64(f.Throttled)
	}
	b.Retried += max(retries, 0)
	b.Usage = b.Usage.Add(f.Usage)
	if cost != nil && f.Usage != (sluice.Usage{}) {
		b.Cost += cost(f.Model, f.Usage)
	}
	if f.State == sluice.StateDone && f.Latency > 0 {
		b.Latency = b.Latency.Add(f.Latency)
	}
}
