package ui

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sluice-llm/sluice"
)

// jobView is what the page shows of a job.
type jobView struct {
	ID, State, Input, Error string
	Created                 time.Time
	Live                    bool // running: the page keeps polling it

	Total, Done, Failed, InFlight int64
	IngestDone                    bool
	Percent                       float64 // of final requests, 0 to 100
	Rate                          float64 // final requests per second, lately
	ETA                           string

	Cost               float64
	Usage              sluice.Usage
	Throttled, Retried int64
	Errors             []codeCount
	P50, P95, P99      time.Duration
	TTFT               time.Duration

	// The last sample of a run, when there is one.
	Sampled      bool
	RPM, TPM     float64
	Learned      bool
	Window       int
	BreakerOpen  bool
	BreakerTrips int64

	// Source says where the counts come from: "timeline" or "ledger".
	Source string
}

type codeCount struct {
	Code string
	N    int64
}

// recentWindow is how far back the recent throughput, and so the ETA, looks.
const recentWindow = 30 * time.Second

// view builds the view of a job; withRate reads its timeline for the recent throughput.
func (h *Handler) view(ctx context.Context, job *sluice.Job, withRate bool) (*jobView, error) {
	v := &jobView{ID: job.ID, State: string(job.State), Input: job.Input, Error: job.Error,
		Created: job.CreatedAt, Live: job.State == sluice.JobRunning, Total: job.Ingested, IngestDone: job.IngestDone}
	var counts *sluice.JobCounts
	if h.ts != nil {
		c, err := h.ts.JobCounts(ctx, job.ID)
		if err != nil {
			return nil, err
		}
		if c.HasTimeline {
			counts = c
		}
	}
	if counts != nil {
		h.fromTotals(v, &counts.Totals)
	}
	s := (*sluice.RunSample)(nil)
	if counts != nil {
		s = counts.Totals.Sample
	}
	switch {
	case v.Live && s != nil, finalSample(job, s):
		v.Done, v.Failed, v.InFlight = s.Done, s.Failed, s.InFlight
		v.Total, v.IngestDone = max(v.Total, s.Total), v.IngestDone || s.IngestDone
		v.Source = "timeline"
	default:
		st, err := h.stats(ctx, job)
		if err != nil {
			return nil, err
		}
		v.Total, v.Done, v.Failed, v.InFlight = st.Total, st.Done, st.Failed, st.InFlight
		v.Source = "ledger"
		if counts == nil {
			h.fromStats(v, st)
		}
	}
	if v.Total > 0 {
		v.Percent = 100 * float64(v.Done+v.Failed) / float64(v.Total)
	}
	if withRate && v.Live {
		bs, err := h.timeline(ctx, job)
		if err != nil {
			return nil, err
		}
		v.Rate = recentRate(bs, h.cfg.Now())
		v.ETA = eta(v)
	}
	return v, nil
}

func (h *Handler) fromTotals(v *jobView, t *sluice.TimelineBucket) {
	v.Cost, v.Usage, v.Throttled, v.Retried = t.Cost, t.Usage, t.Throttled, t.Retried
	v.Errors = sortedCodes(t.Errors)
	v.P50, v.P95, v.P99 = t.Latency.Quantile(0.5), t.Latency.Quantile(0.95), t.Latency.Quantile(0.99)
	v.TTFT = t.TTFT.Quantile(0.5)
	if s := t.Sample; s != nil {
		v.Sampled = true
		v.RPM, v.TPM, v.Learned, v.Window = s.RPM, s.TPM, s.Learned, s.Window
		v.BreakerOpen, v.BreakerTrips = s.BreakerOpen && v.Live, s.BreakerTrips
	}
}

func (h *Handler) fromStats(v *jobView, st *sluice.Stats) {
	v.Usage, v.Throttled, v.Retried = st.Usage, st.Throttled, st.Retries
	v.Errors = sortedCodes(st.FailuresByCode)
	v.P50, v.P95, v.P99 = st.LatencyP50, st.LatencyP95, st.LatencyP99
	if h.cfg.Cost != nil {
		for _, m := range st.ByModel {
			v.Cost += h.cfg.Cost(m.Model, m.Usage)
		}
	}
}

func sortedCodes(m map[string]int64) []codeCount {
	out := make([]codeCount, 0, len(m))
	for _, c := range slices.Sorted(maps.Keys(m)) {
		out = append(out, codeCount{c, m[c]})
	}
	slices.SortStableFunc(out, func(a, b codeCount) int { return cmp.Compare(b.N, a.N) })
	return out
}

// recentRate is the final requests per second over the last recentWindow of buckets.
func recentRate(bs []sluice.TimelineBucket, now time.Time) float64 {
	var n int64
	var from time.Time
	for i := len(bs) - 1; i >= 0; i-- {
		b := bs[i]
		if now.Sub(b.Start) > recentWindow && !from.IsZero() {
			break
		}
		n += b.Completed + b.Failed
		from = b.Start
	}
	if from.IsZero() {
		return 0
	}
	secs := now.Sub(from).Seconds()
	if secs < 1 {
		return 0
	}
	return float64(n) / secs
}

// eta says how long the rest of a job should take at its recent rate.
func eta(v *jobView) string {
	left := v.Total - v.Done - v.Failed
	switch {
	case left <= 0 && v.IngestDone:
		return "finishing"
	case v.Rate <= 0:
		return "—"
	}
	d := time.Duration(float64(left) / v.Rate * float64(time.Second)).Round(time.Second)
	s := fmtDuration(d)
	if !v.IngestDone {
		s += " + input still being read"
	}
	return s
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// statsEntry is a job's Stats, read once per change of the job (and at most every
// statsTTL while it runs without a timeline).
type statsEntry struct {
	stamp time.Time
	at    time.Time
	st    *sluice.Stats
}

const statsTTL = 10 * time.Second

// stats returns the job's ledger Stats, from the cache when the job has not changed.
func (h *Handler) stats(ctx context.Context, job *sluice.Job) (*sluice.Stats, error) {
	now := h.cfg.Now()
	h.mu.Lock()
	e := h.statsCache[job.ID]
	h.mu.Unlock()
	if e != nil && e.stamp.Equal(job.UpdatedAt) && (job.State != sluice.JobRunning || now.Sub(e.at) < statsTTL) {
		return e.st, nil
	}
	st, err := h.cfg.Store.Stats(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.statsCache[job.ID] = &statsEntry{stamp: job.UpdatedAt, at: now, st: st}
	evict(h.statsCache, maxCached, func(e *statsEntry) time.Time { return e.at })
	h.mu.Unlock()
	return st, nil
}

// timeline returns the job's timeline: from its cache, refreshed with the buckets written
// since; for a job without one that is not running, built from its ledger once per
// change of the job.
func (h *Handler) timeline(ctx context.Context, job *sluice.Job) ([]sluice.TimelineBucket, error) {
	if h.ts == nil {
		return nil, nil
	}
	h.mu.Lock()
	c := h.series[job.ID]
	if c == nil {
		c = &timelineCache{maxKeep: h.cfg.MaxPoints}
		h.series[job.ID] = c
	}
	c.used = h.cfg.Now()
	evict(h.series, maxCached, func(c *timelineCache) time.Time { return c.used })
	h.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ledger {
		// Built from the ledger: kept until the job changes, or a timeline appears (a
		// recorder writes a run's last buckets after the run has ended).
		bs, err := h.ts.Timeline(ctx, job.ID, time.Time{})
		if err != nil {
			return nil, err
		}
		if len(bs) == 0 && c.stamp.Equal(job.UpdatedAt) {
			return c.all(), nil
		}
		c.reset()
	}
	if err := c.refresh(ctx, h.ts, job.ID); err != nil {
		return nil, err
	}
	if len(c.closed)+len(c.tail) == 0 && job.State != sluice.JobRunning {
		bs, err := h.fromLedger(ctx, job.ID)
		if err != nil {
			return nil, err
		}
		c.add(bs)
		c.ledger, c.stamp = true, job.UpdatedAt
	}
	return c.all(), nil
}

// maxCached bounds the jobs whose timeline and stats the Handler keeps.
const maxCached = 64

// evict drops the least recently used entries of m beyond n.
func evict[V any](m map[string]V, n int, used func(V) time.Time) {
	for len(m) > n {
		var oldest string
		var at time.Time
		for k, v := range m {
			if u := used(v); oldest == "" || u.Before(at) {
				oldest, at = k, u
			}
		}
		delete(m, oldest)
	}
}

// finalSample reports whether s, a completed job's last sample, counts every request of
// the job as final: the run that completed the job took it, and its counts are the
// ledger's, with no scan.
func finalSample(job *sluice.Job, s *sluice.RunSample) bool {
	return s != nil && job.State == sluice.JobCompleted && s.IngestDone &&
		s.Total == job.Ingested && s.Done+s.Failed == s.Total && s.InFlight == 0
}
