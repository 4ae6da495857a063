package sluice

import (
	"context"
	"log/slog"
	"time"
)

// AttemptKind says how one attempt at a request ended, for an Observer.
type AttemptKind string

// The ends of an attempt.
const (
	// AttemptOK is an answer that made the request done.
	AttemptOK AttemptKind = "ok"
	// AttemptThrottled is a 429: the request goes back to wait for its turn.
	AttemptThrottled AttemptKind = "throttled"
	// AttemptRetry is a fault (no answer, 5xx, a broken body) that will be retried.
	AttemptRetry AttemptKind = "retry"
	// AttemptFailed is an attempt that made the request failed for good.
	AttemptFailed AttemptKind = "failed"
	// AttemptInterrupted is an attempt cut off by a stop; the request stays pending.
	AttemptInterrupted AttemptKind = "interrupted"
)

// Attempt describes one finished attempt at sending a request.
type Attempt struct {
	JobID    string
	CustomID string
	Model    string
	Kind     AttemptKind
	// StatusCode is the HTTP status of the answer, 0 when there was none; ErrorCode is
	// the error's code (an OpenAI error code or one of sluice's Code* constants), "" on
	// success.
	StatusCode int
	ErrorCode  string
	// Latency is from sending to the last byte; TTFT is from sending to the first token
	// of a streamed answer (0 when not streamed).
	Latency time.Duration
	TTFT    time.Duration
	// Usage is the answer's usage, and Cost what it cost (0 without a Cost function).
	Usage Usage
	Cost  float64
	// Finished is when the attempt ended.
	Finished time.Time
}

// Observer is told about every finished attempt of an Engine's runs (Config.Observer). It
// is called from the run's dispatcher, one attempt at a time, so it must return quickly
// and must not block: record counters and histograms, never do I/O.
type Observer interface {
	ObserveAttempt(a *Attempt)
}

// observe tells the Engine's Observer, if any, about an attempt's result.
func (r *Run) observe(res *attemptResult, kind AttemptKind) {
	r.logAttempt(res, kind)
	obs := r.e.cfg.Observer
	if obs == nil {
		return
	}
	it := res.item
	a := Attempt{
		JobID:    r.job.ID,
		CustomID: it.Request.CustomID,
		Model:    it.Estimate.Model,
		Kind:     kind,
		Latency:  res.latency,
		Finished: r.e.now(),
	}
	if res.resp != nil {
		a.StatusCode, a.Usage, a.TTFT = res.resp.StatusCode, res.resp.Usage, res.resp.TTFT
		if r.e.cfg.Cost != nil && a.Usage != (Usage{}) {
			a.Cost = r.e.cfg.Cost(a.Model, a.Usage)
		}
	}
	if res.err != nil {
		a.ErrorCode = res.err.Code
		if a.StatusCode == 0 {
			a.StatusCode = res.err.StatusCode
		}
	}
	obs.ObserveAttempt(&a)
}

// logAttempt logs an attempt with the ids that find it again: the job, the request's
// custom_id and line, and the upstream's x-request-id. A request that failed for good is
// logged at Info, every other attempt at Debug; nothing is built when the level is off.
func (r *Run) logAttempt(res *attemptResult, kind AttemptKind) {
	level, msg := slog.LevelDebug, "attempt"
	if kind == AttemptFailed {
		level, msg = slog.LevelInfo, "request failed"
	}
	lg := r.e.cfg.Logger
	ctx := context.Background()
	if !lg.Enabled(ctx, level) {
		return
	}
	it := res.item
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("job", r.job.ID), slog.String("custom_id", it.Request.CustomID),
		slog.Int64("line", it.Line), slog.String("model", it.Estimate.Model), slog.String("kind", string(kind)),
		slog.Duration("latency", res.latency))
	if res.resp != nil {
		attrs = append(attrs, slog.Int("status", res.resp.StatusCode), slog.String("request_id", res.resp.RequestID))
		if res.resp.TTFT > 0 {
			attrs = append(attrs, slog.Duration("ttft", res.resp.TTFT))
		}
	}
	if res.err != nil {
		attrs = append(attrs, slog.String("code", res.err.Code), slog.String("err", res.err.Message))
	}
	lg.LogAttrs(ctx, level, msg, attrs...)
}

// RunObserver is an Observer that is also told when a run starts and when it ends, so
// that it can read the run's Progress while it goes (gauges read when metrics are
// scraped, say). RunStarted is called before the run's first attempt and RunEnded after
// its last, before Run.Wait returns; both must return quickly.
type RunObserver interface {
	Observer
	RunStarted(r *Run)
	RunEnded(r *Run)
}

// observeRun tells the Engine's Observer, when it is a RunObserver, that r starts
// (start true) or ends.
func (r *Run) observeRun(start bool) {
	ro, ok := r.e.cfg.Observer.(RunObserver)
	switch {
	case !ok:
	case start:
		ro.RunStarted(r)
	default:
		ro.RunEnded(r)
	}
}
