package ui

import (
	"context"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
)

// timelineCache keeps one job's timeline between refreshes, so that a refresh reads only
// the buckets written since the last one: the closed buckets, merged into wider ones
// whenever there are more than 2×maxPoints of them, and the tail, re-read every time
// because the newest bucket may still grow.
type timelineCache struct {
	mu      sync.Mutex
	closed  []sluice.TimelineBucket
	tail    []sluice.TimelineBucket
	stamp   time.Time // the job's UpdatedAt, for timelines built from the ledger
	ledger  bool      // built from the ledger
	used    time.Time // last read, to evict the least recently used
	loaded  bool
	maxKeep int
}

// reset forgets the cached timeline.
func (c *timelineCache) reset() {
	c.closed, c.tail, c.ledger, c.stamp, c.loaded = nil, nil, false, time.Time{}, false
}

// refresh reads the buckets since the tail's start and folds the closed ones in.
func (c *timelineCache) refresh(ctx context.Context, ts sluice.TimelineStore, jobID string) error {
	var since time.Time
	switch {
	case len(c.tail) > 0:
		since = c.tail[0].Start
	case len(c.closed) > 0:
		last := c.closed[len(c.closed)-1]
		since = last.Start.Add(last.Width)
	}
	bs, err := ts.Timeline(ctx, jobID, since)
	if err != nil {
		return err
	}
	c.loaded = true
	if len(bs) == 0 {
		return nil
	}
	c.tail = bs
	if n := len(c.tail) - 1; n > 0 {
		c.add(c.tail[:n])
		c.tail = slices.Clone(c.tail[n:])
	}
	return nil
}

// add appends closed buckets, coarsening when there are too many.
func (c *timelineCache) add(bs []sluice.TimelineBucket) {
	c.closed = append(c.closed, bs...)
	for len(c.closed) > 2*c.maxKeep {
		c.closed = coarsen(c.closed)
	}
}

// all is the cached timeline.
func (c *timelineCache) all() []sluice.TimelineBucket {
	return append(slices.Clone(c.closed), c.tail...)
}

// coarsen merges buckets into buckets twice as wide as the widest, on a grid of that width.
func coarsen(bs []sluice.TimelineBucket) []sluice.TimelineBucket {
	var w time.Duration
	for _, b := range bs {
		w = max(w, b.Width)
	}
	w = max(2*w, time.Second)
	var out []sluice.TimelineBucket
	for _, b := range bs {
		start := b.Start.Truncate(w)
		if n := len(out); n > 0 && out[n-1].Start.Equal(start) {
			out[n-1].Merge(&b)
			continue
		}
		nb := sluice.TimelineBucket{Start: start, Width: w}
		nb.Merge(&b)
		nb.Width = w
		out = append(out, nb)
	}
	return out
}

// downsample merges buckets until at most n are left.
func downsample(bs []sluice.TimelineBucket, n int) []sluice.TimelineBucket {
	for len(bs) > n {
		bs = coarsen(bs)
	}
	return bs
}

// chartData is a timeline as the page's charts draw it: one column per series, aligned
// on T (Unix seconds, the buckets' starts); nil for a value that is not known (a bucket
// without a sample, or without answers), which the charts leave as a gap. Rates are per
// second of the bucket's width.
type chartData struct {
	T []float64 `json:"t"`

	Done      []*float64 `json:"done"`
	Failed    []*float64 `json:"failed"`
	Throttled []*float64 `json:"throttled"`
	Retried   []*float64 `json:"retried"`

	P50  []*float64 `json:"p50"`
	P95  []*float64 `json:"p95"`
	P99  []*float64 `json:"p99"`
	TTFT []*float64 `json:"ttft"`

	PromptTPS     []*float64 `json:"prompt_tps"`
	CompletionTPS []*float64 `json:"completion_tps"`
	Cost          []*float64 `json:"cost"` // cumulative $

	Errors map[string][]*float64 `json:"errors"` // per second, by code

	RPM      []*float64 `json:"rpm"`
	TPM      []*float64 `json:"tpm"`
	Paused   []*float64 `json:"paused"` // seconds of the bucket spent waiting out 429s
	Breaker  []*float64 `json:"breaker"`
	InFlight []*float64 `json:"in_flight"`
	Window   []*float64 `json:"window"`

	HasTTFT    bool `json:"has_ttft"`
	HasSamples bool `json:"has_samples"`
	Ledger     bool `json:"ledger"` // built from the ledger after the fact
	Live       bool `json:"live"`   // the job runs: more is to come
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func ms(d time.Duration) *float64 { return num(float64(d) / float64(time.Millisecond)) }

// chart turns buckets into chart columns.
func chart(bs []sluice.TimelineBucket) *chartData {
	d := &chartData{Errors: map[string][]*float64{}}
	codes := map[string]bool{}
	for _, b := range bs {
		for c := range b.Errors {
			codes[c] = true
		}
	}
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		d.Errors[c] = make([]*float64, 0, len(bs))
	}
	var cost float64
	for _, b := range bs {
		w := max(b.Width.Seconds(), 1e-9)
		d.T = append(d.T, float64(b.Start.UnixMilli())/1000)
		d.Done = append(d.Done, num(float64(b.Completed)/w))
		d.Failed = append(d.Failed, num(float64(b.Failed)/w))
		d.Throttled = append(d.Throttled, num(float64(b.Throttled)/w))
		d.Retried = append(d.Retried, num(float64(b.Retried)/w))
		if b.Latency.Count() > 0 {
			d.P50 = append(d.P50, ms(b.Latency.Quantile(0.50)))
			d.P95 = append(d.P95, ms(b.Latency.Quantile(0.95)))
			d.P99 = append(d.P99, ms(b.Latency.Quantile(0.99)))
		} else {
			d.P50, d.P95, d.P99 = append(d.P50, nil), append(d.P95, nil), append(d.P99, nil)
		}
		if b.TTFT.Count() > 0 {
			d.HasTTFT = true
			d.TTFT = append(d.TTFT, ms(b.TTFT.Quantile(0.50)))
		} else {
			d.TTFT = append(d.TTFT, nil)
		}
		d.PromptTPS = append(d.PromptTPS, num(float64(b.Usage.PromptTokens)/w))
		d.CompletionTPS = append(d.CompletionTPS, num(float64(b.Usage.CompletionTokens)/w))
		cost += b.Cost
		d.Cost = append(d.Cost, num(cost))
		for c := range d.Errors {
			d.Errors[c] = append(d.Errors[c], num(float64(b.Errors[c])/w))
		}
		s := b.Sample
		if s == nil {
			for _, col := range []*[]*float64{&d.RPM, &d.TPM, &d.Paused, &d.Breaker, &d.InFlight, &d.Window} {
				*col = append(*col, nil)
			}
			continue
		}
		d.HasSamples = true
		breaker := 0.0
		if s.BreakerOpen {
			breaker = 1
		}
		d.RPM = append(d.RPM, nonZero(s.RPM))
		d.TPM = append(d.TPM, nonZero(s.TPM))
		d.Paused = append(d.Paused, num(s.Paused.Seconds()))
		d.Breaker = append(d.Breaker, num(breaker))
		d.InFlight = append(d.InFlight, num(float64(s.InFlight)))
		d.Window = append(d.Window, num(float64(s.Window)))
	}
	return d
}

// nonZero is v, or nil for 0 (a limit that is not set is not drawn).
func nonZero(v float64) *float64 {
	if v == 0 {
		return nil
	}
	return num(v)
}
