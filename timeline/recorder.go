package timeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
)

// Defaults of Config.
const (
	// DefaultInterval is the width of a bucket.
	DefaultInterval = time.Second
	// DefaultSampleEvery is how often watched runs are sampled (their 429 pauses are
	// measured to this resolution).
	DefaultSampleEvery = 250 * time.Millisecond
	// DefaultMaxBacklog is how many buckets per job wait for a store that failed to
	// take them before the oldest are dropped.
	DefaultMaxBacklog = 600
)

// Config configures a Recorder. Its zero value is usable.
type Config struct {
	// Interval is the width of a bucket (DefaultInterval).
	Interval time.Duration
	// SampleEvery is how often watched runs are sampled (DefaultSampleEvery).
	SampleEvery time.Duration
	// MaxBacklog bounds the buckets kept per job while the store fails (DefaultMaxBacklog).
	MaxBacklog int
	// Logger receives failures to write the timeline; nil discards them.
	Logger *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = DefaultSampleEvery
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = DefaultMaxBacklog
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Recorder is a sluice.Observer that keeps jobs' timelines. Start its writer with Start
// and stop it with Close, which writes what is left. It is safe for concurrent use.
type Recorder struct {
	st  sluice.TimelineStore
	cfg Config

	mu      sync.Mutex
	open    map[string]*jobBuckets // job id → its buckets not yet written
	watched map[*sluice.Run]*watch

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// jobBuckets are a job's buckets not yet written, by start.
type jobBuckets struct {
	buckets map[time.Time]*sluice.TimelineBucket
	backlog []sluice.TimelineBucket // closed, waiting for the store
}

// watch is a run being sampled, with what was sampled of its current bucket.
type watch struct {
	jobID  string
	paused time.Duration // of the current bucket
	start  time.Time     // the current bucket
	ended  bool
}

var _ sluice.RunObserver = (*Recorder)(nil)

// New returns a Recorder that writes to st.
func New(st sluice.TimelineStore, cfg Config) *Recorder {
	return &Recorder{
		st:      st,
		cfg:     cfg.WithDefaults(),
		open:    map[string]*jobBuckets{},
		watched: map[*sluice.Run]*watch{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Interval is the width of the Recorder's buckets.
func (r *Recorder) Interval() time.Duration { return r.cfg.Interval }

// ObserveAttempt adds a finished attempt to its job's bucket. It never blocks on I/O.
func (r *Recorder) ObserveAttempt(a *sluice.Attempt) {
	if a.Kind == sluice.AttemptInterrupted {
		return
	}
	at := a.Finished
	if at.IsZero() {
		at = r.cfg.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	AddAttempt(r.bucket(a.JobID, at), a)
}

// AddAttempt adds one finished attempt to b.
func AddAttempt(b *sluice.TimelineBucket, a *sluice.Attempt) {
	switch a.Kind {
	case sluice.AttemptOK:
		b.Completed++
	case sluice.AttemptFailed:
		b.Failed++
	case sluice.AttemptThrottled:
		b.Throttled++
	case sluice.AttemptRetry:
		b.Retried++
	case sluice.AttemptInterrupted:
		return
	}
	if a.Kind != sluice.AttemptOK {
		addError(b, a.StatusCode, a.ErrorCode)
	}
	b.Usage = b.Usage.Add(a.Usage)
	b.Cost += a.Cost
	if a.Kind == sluice.AttemptOK && a.Latency > 0 {
		b.Latency = b.Latency.Add(a.Latency)
	}
	if a.TTFT > 0 {
		b.TTFT = b.TTFT.Add(a.TTFT)
	}
}

// addError counts an error by its HTTP status, or by its code without one.
func addError(b *sluice.TimelineBucket, status int, code string) {
	key := code
	if status != 0 {
		key = strconv.Itoa(status)
	}
	if key == "" {
		key = "error"
	}
	if b.Errors == nil {
		b.Errors = map[string]int64{}
	}
	b.Errors[key]++
}

// bucket returns the job's bucket holding time at; r.mu is held.
func (r *Recorder) bucket(jobID string, at time.Time) *sluice.TimelineBucket {
	jb := r.open[jobID]
	if jb == nil {
		jb = &jobBuckets{buckets: map[time.Time]*sluice.TimelineBucket{}}
		r.open[jobID] = jb
	}
	start := at.UTC().Truncate(r.cfg.Interval)
	b := jb.buckets[start]
	if b == nil {
		b = &sluice.TimelineBucket{Start: start, Width: r.cfg.Interval}
		jb.buckets[start] = b
	}
	return b
}

// Watch samples run's progress (its counts, limiter and breaker) into its job's buckets
// until it ends; its last sample is written as soon as it has. Start must have been
// called for samples to be taken.
func (r *Recorder) Watch(run *sluice.Run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	r.watched[run] = &watch{jobID: run.Job().ID, start: now.UTC().Truncate(r.cfg.Interval)}
	r.bucket(run.Job().ID, now)
}

// RunStarted watches run (Watch), when the Engine tells its Observer of runs.
func (r *Recorder) RunStarted(run *sluice.Run) { r.Watch(run) }

// RunEnded takes the run's last sample, which the writer writes at its next tick.
func (r *Recorder) RunEnded(run *sluice.Run) {
	r.mu.Lock()
	w := r.watched[run]
	if w != nil {
		w.ended = true
	}
	r.mu.Unlock()
	if w != nil {
		r.sampleRun(run, w, r.cfg.Now())
	}
}

// Start starts the Recorder's writer; Close stops it. Calling it again does nothing.
func (r *Recorder) Start() {
	r.startOnce.Do(func() { go r.loop() })
}

// Close stops the writer and writes every bucket still open, within ctx.
func (r *Recorder) Close(ctx context.Context) error {
	started := true
	r.startOnce.Do(func() { started = false; close(r.done) })
	r.stopOnce.Do(func() { close(r.stop) })
	if started {
		<-r.done
	}
	r.sample(r.cfg.Now())
	return r.flush(ctx, time.Time{})
}

// loop samples the watched runs every SampleEvery and writes the buckets that closed.
func (r *Recorder) loop() {
	defer close(r.done)
	tick := time.NewTicker(r.cfg.SampleEvery)
	defer tick.Stop()
	ctx := context.Background()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		now := r.cfg.Now()
		ended := r.sample(now)
		cutoff := now.UTC().Truncate(r.cfg.Interval)
		if ended {
			cutoff = time.Time{} // a run ended: write its partial bucket now
		}
		if err := r.flush(ctx, cutoff); err != nil {
			r.cfg.Logger.Warn("timeline: write", "err", err)
		}
	}
}

// sample takes a sample of every watched run into its job's current bucket, and reports
// whether a run has ended (it is then forgotten, after a last sample).
func (r *Recorder) sample(now time.Time) (ended bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := now.UTC().Truncate(r.cfg.Interval)
	for run, w := range r.watched {
		select {
		case <-run.Done():
			w.ended = true
		default:
		}
		r.sampleLocked(run, w, now, start)
		if w.ended {
			ended = true
			delete(r.watched, run)
		}
	}
	return ended
}

// sampleRun takes one sample of run.
func (r *Recorder) sampleRun(run *sluice.Run, w *watch, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sampleLocked(run, w, now, now.UTC().Truncate(r.cfg.Interval))
}

// sampleLocked puts a sample of run in its job's bucket of start; r.mu is held.
func (r *Recorder) sampleLocked(run *sluice.Run, w *watch, now, start time.Time) {
	p := run.Progress()
	if w.start != start {
		w.start, w.paused = start, 0
	}
	if p.Limits.PausedUntil.After(now) {
		w.paused += min(r.cfg.SampleEvery, p.Limits.PausedUntil.Sub(now))
	}
	b := r.bucket(w.jobID, now)
	b.Sample = &sluice.RunSample{
		At: now.UTC(), Total: p.Total, IngestDone: p.IngestDone,
		Done: p.Done, Failed: p.Failed, InFlight: p.InFlight,
		RPM: p.Limits.RPM, TPM: p.Limits.TPM, Learned: p.Limits.Learned, Window: p.Limits.Window,
		Paused: w.paused, BreakerOpen: p.BreakerOpen, BreakerTrips: p.BreakerTrips,
	}
}

// flush writes every bucket that starts before cutoff (all of them when cutoff is zero),
// one AppendTimeline per job. A job whose write fails keeps its buckets for the next
// flush, up to MaxBacklog.
func (r *Recorder) flush(ctx context.Context, cutoff time.Time) error {
	type batch struct {
		jobID   string
		buckets []sluice.TimelineBucket
	}
	var batches []batch
	r.mu.Lock()
	for jobID, jb := range r.open {
		out := jb.backlog
		jb.backlog = nil
		for start, b := range jb.buckets {
			if cutoff.IsZero() || start.Before(cutoff) {
				out = append(out, *b)
				delete(jb.buckets, start)
			}
		}
		if len(out) > 0 {
			// In time order, so that a requeue past MaxBacklog drops the oldest.
			slices.SortFunc(out, func(a, b sluice.TimelineBucket) int { return a.Start.Compare(b.Start) })
			batches = append(batches, batch{jobID, out})
		}
		if len(jb.buckets) == 0 {
			delete(r.open, jobID)
		}
	}
	r.mu.Unlock()
	var first error
	for _, b := range batches {
		if err := r.st.AppendTimeline(ctx, b.jobID, b.buckets); err != nil {
			if errors.Is(err, sluice.ErrNotFound) {
				continue // the job was deleted: its timeline goes with it
			}
			if first == nil {
				first = fmt.Errorf("job %s: %w", b.jobID, err)
			}
			r.requeue(b.jobID, b.buckets)
		}
	}
	return first
}

// requeue keeps buckets a failed write did not take, the newest MaxBacklog of them.
func (r *Recorder) requeue(jobID string, bs []sluice.TimelineBucket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	jb := r.open[jobID]
	if jb == nil {
		jb = &jobBuckets{buckets: map[time.Time]*sluice.TimelineBucket{}}
		r.open[jobID] = jb
	}
	jb.backlog = append(jb.backlog, bs...)
	if n := len(jb.backlog) - r.cfg.MaxBacklog; n > 0 {
		jb.backlog = jb.backlog[n:]
	}
}
