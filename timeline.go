package sluice

import (
	"context"
	"math"
	"time"
)

// TimelineBucket sums what a job's runs did during one interval of time, for dashboards
// and reports: a job's timeline is its buckets in time order. Buckets are additive: two
// processes working on one job may each write a bucket with the same Start, and the store
// merges them (TimelineBucket.Merge).
type TimelineBucket struct {
	Start time.Time     `json:"start"`
	Width time.Duration `json:"width"`
	// Attempts that ended in the interval, by how they ended (Attempt.Kind): Completed
	// made a request done, Failed made it failed for good, Throttled were answered 429,
	// Retried met another fault and will be sent again.
	Completed int64 `json:"completed,omitempty"`
	Failed    int64 `json:"failed,omitempty"`
	Throttled int64 `json:"throttled,omitempty"`
	Retried   int64 `json:"retried,omitempty"`
	// Errors counts the attempts that ended in an error, by HTTP status ("429", "500")
	// or, without an answer, by error code ("timeout").
	Errors map[string]int64 `json:"errors,omitempty"`
	// Usage and Cost are those of the answers received in the interval.
	Usage Usage   `json:"usage"`
	Cost  float64 `json:"cost,omitempty"`
	// Latency holds the latencies of the attempts that got an answer; TTFT the times
	// to first token of streamed ones.
	Latency Histogram `json:"latency,omitempty"`
	TTFT    Histogram `json:"ttft,omitempty"`
	// Sample is the state of the run at the end of the interval; nil when none was taken.
	Sample *RunSample `json:"sample,omitempty"`
}

// RunSample is a run's state at one moment (from Run.Progress), as a timeline keeps it.
type RunSample struct {
	At time.Time `json:"at"`
	// Total, Done, Failed and InFlight count the job's requests as the run saw them.
	Total      int64 `json:"total"`
	IngestDone bool  `json:"ingest_done,omitempty"`
	Done       int64 `json:"done"`
	Failed     int64 `json:"failed"`
	InFlight   int64 `json:"in_flight"`
	// RPM and TPM are the limiter's rates in force (0: unlimited); Learned is set when
	// they come from the upstream's headers; Window is the requests it lets fly at once.
	RPM     float64 `json:"rpm,omitempty"`
	TPM     float64 `json:"tpm,omitempty"`
	Learned bool    `json:"learned,omitempty"`
	Window  int     `json:"window,omitempty"`
	// Paused is how much of the interval the dispatcher spent waiting out 429s.
	Paused time.Duration `json:"paused,omitempty"`
	// BreakerOpen reports whether the circuit breaker was open; BreakerTrips counts how
	// often it has opened.
	BreakerOpen  bool  `json:"breaker_open,omitempty"`
	BreakerTrips int64 `json:"breaker_trips,omitempty"`
}

// Merge adds o's counts, usage and histograms to b, and keeps the later of the two
// samples.
func (b *TimelineBucket) Merge(o *TimelineBucket) {
	b.Completed += o.Completed
	b.Failed += o.Failed
	b.Throttled += o.Throttled
	b.Retried += o.Retried
	for code, n := range o.Errors {
		if b.Errors == nil {
			b.Errors = map[string]int64{}
		}
		b.Errors[code] += n
	}
	b.Usage = b.Usage.Add(o.Usage)
	b.Cost += o.Cost
	b.Latency = b.Latency.Merge(o.Latency)
	b.TTFT = b.TTFT.Merge(o.TTFT)
	b.Width = max(b.Width, o.Width)
	if o.Sample != nil && (b.Sample == nil || !o.Sample.At.Before(b.Sample.At)) {
		s := *o.Sample
		b.Sample = &s
	}
}

// JobCounts is where a job stands, read without scanning its ledger: the job's row and
// its timeline's running totals. Done, Failed and InFlight are those of the latest
// sample of a run (so they lag the ledger by at most one interval while a run writes its
// timeline); Throttled, Retried, Usage and Cost sum the timeline.
type JobCounts struct {
	JobID string
	Total int64 // lines in the ledger (Job.Ingested)
	// HasTimeline is false for a job no run wrote a timeline for: the other counts are
	// then zero and only Stats knows them.
	HasTimeline bool
	// Totals sums the job's timeline, with the latest sample.
	Totals TimelineBucket
}

// TimelineStore is a Store that keeps jobs' timelines, so that dashboards can follow a
// job of any size without scanning its ledger. Stores implement it optionally.
type TimelineStore interface {
	// AppendTimeline adds buckets to the job's timeline and to its running totals, in
	// one transaction; a bucket with the Start of one already stored is merged into it.
	AppendTimeline(ctx context.Context, jobID string, buckets []TimelineBucket) error
	// Timeline returns the job's buckets with Start >= since, in time order.
	Timeline(ctx context.Context, jobID string, since time.Time) ([]TimelineBucket, error)
	// JobCounts returns the job's counts from its row and its timeline's totals, or
	// ErrNotFound. Its cost does not grow with the job.
	JobCounts(ctx context.Context, jobID string) (*JobCounts, error)
	// Failures returns up to limit failed requests with Line > after, in line order;
	// a non-empty code keeps those whose status code or error code is code. Its cost
	// grows with the failures read, not with the job.
	Failures(ctx context.Context, jobID string, after int64, code string, limit int) ([]*Result, error)
	// Input returns the request of the job's line, or ErrNotFound.
	Input(ctx context.Context, jobID string, line int64) (*Request, error)
	// Finished calls fn for every final request of the job that has a finish time, in
	// line order, until fn returns an error: the ledger's side of a timeline, for jobs
	// run without one. It reads the whole job, a page at a time.
	Finished(ctx context.Context, jobID string, fn func(*Finished) error) error
}

// Finished is a final request as a timeline built from the ledger needs it.
type Finished struct {
	Line       int64
	At         time.Time // FinishedAt
	State      RequestState
	Attempts   int
	Throttled  int
	StatusCode int
	ErrorCode  string
	Latency    time.Duration // of the last attempt
	Model      string
	Usage      Usage
}

// Histogram counts durations in exponential bins: bin i holds durations d with
// HistogramBound(i-1) < d <= HistogramBound(i); the last bin holds everything longer.
// Its zero value is empty; it is kept short (no trailing empty bins).
type Histogram []int64

// HistogramBins is how many bins a Histogram has at most.
const HistogramBins = 96

// histogramBase is the upper bound of bin 0; each bin is 2^(1/4) wider than the one
// before (about 19%), so bin 95 ends near 11 minutes.
const histogramBase = time.Millisecond

// HistogramBound is the upper bound of bin i.
func HistogramBound(i int) time.Duration {
	return time.Duration(float64(histogramBase) * math.Pow(2, float64(i)/4))
}

// histogramBin is the bin d falls in.
func histogramBin(d time.Duration) int {
	if d <= histogramBase {
		return 0
	}
	i := int(math.Ceil(4 * math.Log2(float64(d)/float64(histogramBase))))
	if i > 0 && HistogramBound(i-1) >= d { // rounding at a bound
		i--
	}
	return min(i, HistogramBins-1)
}

// Add returns h with d counted.
func (h Histogram) Add(d time.Duration) Histogram {
	i := histogramBin(d)
	for len(h) <= i {
		h = append(h, 0)
	}
	h[i]++
	return h
}

// Merge returns h with o's counts added.
func (h Histogram) Merge(o Histogram) Histogram {
	for len(h) < len(o) {
		h = append(h, 0)
	}
	for i, n := range o {
		h[i] += n
	}
	return h
}

// Count is how many durations h holds.
func (h Histogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile estimates the q-quantile (0 < q <= 1) of h, nearest rank, interpolating
// geometrically within the bin it falls in; 0 when h is empty. Its error is within one
// bin's width (19%).
func (h Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen int64
	for i, c := range h {
		if c == 0 || seen+c < rank {
			seen += c
			continue
		}
		hi := float64(HistogramBound(i))
		lo := hi / math.Pow(2, 0.25)
		if i == 0 {
			lo = 0
		}
		frac := float64(rank-seen) / float64(c)
		if lo == 0 {
			return time.Duration(hi * frac)
		}
		return time.Duration(lo * math.Pow(hi/lo, frac))
	}
	return HistogramBound(len(h) - 1)
}
