package sluice

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Online requests.
//
// A gateway in front of an Engine's upstream sends requests of its own, one at a time,
// outside any run: Admit lets them through the same circuit breaker and rate limiter
// as the Engine's runs, so that limits learned from either kind of traffic hold for
// both. Online requests go first: they take a concurrency slot at once (they are not
// held to the window), so that the runs' batches fill what is left.

// OnlineAhead is how far ahead of the batches' queued sends an online request may go:
// a wait for the rate limiter up to this long is skipped, and the batches' next sends
// wait that much longer instead, so that the rate sent stays the limiter's. A pause the
// upstream asked for (retry-after) is never skipped.
const OnlineAhead = time.Second

// Errors of Admit.
var (
	// ErrBreakerOpen means the Engine's circuit breaker is open: its upstream kept
	// failing, and no request is let through until its cooldown ends.
	ErrBreakerOpen = newSentinel("circuit breaker open")
	// ErrRateLimited means the rate limiter would make the request wait past its
	// context's deadline.
	ErrRateLimited = newSentinel("rate limited")
)

// Admit lets one online request estimated est through the Engine's circuit breaker and
// rate limiter, ahead of the Engine's runs, and returns the function that reports how it
// went: call done exactly once with the upstream's Response (its status, usage and rate
// limit headers; nil when there was no answer) and the error, an *UpstreamError for an
// answer with an error status or no answer at all, ctx's error when the caller gave up.
// Admit fails at once with ErrBreakerOpen when the breaker is open, and with
// ErrRateLimited when the limiter would make it wait longer than maxWait (0: no bound)
// or past ctx's deadline; otherwise it waits for the limiter (ctx's error when ctx ends
// first).
func (e *Engine) Admit(ctx context.Context, est Estimate, maxWait time.Duration) (done func(*Response, error), err error) {
	allowed, err := e.breaker.cb.Allow()
	if err != nil {
		return nil, fmt.Errorf("admit: %w", ErrBreakerOpen)
	}
	report := e.breaker.reporter(allowed)
	e.acquireOnline()
	now := e.now()
	wait, reserved := e.lim.Reserve(now, est)
	if wait > 0 && wait <= OnlineAhead && !e.lim.Limits().PausedUntil.After(now) {
		// Online goes first: the reservation's debt falls on the batches' next sends.
		wait = 0
	}
	if wait > 0 {
		if err := waitAdmit(ctx, now, wait, maxWait); err != nil {
			e.lim.Refund(e.now(), reserved)
			report(errBreakerExclude)
			e.releaseOnline()
			return nil, err
		}
	}
	start := e.now()
	var once sync.Once
	return func(resp *Response, err error) {
		once.Do(func() { e.settleOnline(start, reserved, est, resp, err, report) })
	}, nil
}

// waitAdmit waits d from now, or fails when d is over maxWait (when positive), or ctx
// ends first or has a deadline before.
func waitAdmit(ctx context.Context, now time.Time, d, maxWait time.Duration) error {
	if dl, ok := ctx.Deadline(); (ok && now.Add(d).After(dl)) || (maxWait > 0 && d > maxWait) {
		return fmt.Errorf("admit: %w: the limiter asks for a wait of %v", ErrRateLimited, d.Round(time.Millisecond))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("admit: %w", ctx.Err())
	}
}

// settleOnline is Admit's done: it tells the limiter and the breaker what the answer
// said, as a run's attempt does, and frees the slot.
func (e *Engine) settleOnline(start time.Time, reserved int64, est Estimate, resp *Response, err error, report func(error)) {
	defer e.releaseOnline()
	now := e.now()
	if resp != nil {
		e.lim.Observe(now, resp.Limits)
	}
	var ue *UpstreamError
	e.observeOnline(start, now, est, resp, err)
	switch {
	case err == nil:
		e.answered.Store(true)
		e.lim.Answered(now, start)
		if resp != nil {
			e.lim.Settle(now, reserved, est, resp.Usage)
		}
		report(nil)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		report(errBreakerExclude) // the caller gave up: nothing learned about the upstream
	case errors.As(err, &ue) && ue.Throttled():
		e.lim.Throttled(now, start, ue.RetryAfter)
		report(errBreakerExclude)
	case errors.As(err, &ue) && ue.StatusCode != 0 && ue.StatusCode < 500:
		e.lim.Answered(now, start)
		report(nil) // a 4xx is about the request: the upstream is up
	default:
		report(errBreakerFault)
	}
}

// OnlineJobID is the JobID of online requests' attempts, for the Engine's Observer.
const OnlineJobID = "online"

// observeOnline tells the Engine's Observer, if any, how an online request went.
func (e *Engine) observeOnline(start, now time.Time, est Estimate, resp *Response, err error) {
	obs := e.cfg.Observer
	if obs == nil {
		return
	}
	a := Attempt{JobID: OnlineJobID, Model: est.Model, Kind: AttemptOK, Latency: now.Sub(start), Finished: now}
	if resp != nil {
		a.StatusCode, a.Usage, a.TTFT = resp.StatusCode, resp.Usage, resp.TTFT
		if e.cfg.Cost != nil && a.Usage != (Usage{}) {
			a.Cost = e.cfg.Cost(a.Model, a.Usage)
		}
	}
	var ue *UpstreamError
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		a.Kind = AttemptInterrupted
	case errors.As(err, &ue):
		a.ErrorCode = ue.Code
		if a.StatusCode == 0 {
			a.StatusCode = ue.StatusCode
		}
		switch {
		case ue.Throttled():
			a.Kind = AttemptThrottled
		case ue.Retryable():
			a.Kind = AttemptRetry // the gateway fails over, or the client retries
		default:
			a.Kind = AttemptFailed
		}
	default:
		a.Kind, a.ErrorCode = AttemptRetry, CodeConnection
	}
	obs.ObserveAttempt(&a)
}

// acquireOnline takes a concurrency slot for an online request, whatever the window: the
// runs waiting for slots get fewer.
func (e *Engine) acquireOnline() {
	e.slots.Lock()
	e.inFlight++
	e.slots.Unlock()
}

// releaseOnline frees an online request's slot and gives it to a waiting run.
func (e *Engine) releaseOnline() {
	window := min(e.lim.Window(), e.cfg.Concurrency)
	e.slots.Lock()
	defer e.slots.Unlock()
	e.inFlight--
	e.grant(window)
}

// MeanOutput is the mean completion tokens of the answers to requests without an output
// bound seen so far, or def before any.
func (e *Engine) MeanOutput(def int64) int64 { return e.lim.meanOutput(def) }

// Reserve holds the worst case of a request estimated est against the pool, for a
// request sent outside the pool's runs (an online request, say): its prompt plus its
// output bound, or, without one, as a run's request does (see SetContextLimit), with
// meanOutput as the mean output seen (defaultOutputGuess when not positive). It returns
// the function that settles the hold with the answer's usage (a zero Usage when nothing
// was spent), to be called once, and false when the request does not fit in what is
// left.
func (p *BudgetPool) Reserve(est Estimate, meanOutput int64) (settle func(Usage), ok bool) {
	if meanOutput <= 0 {
		meanOutput = defaultOutputGuess
	}
	b := &p.b
	h, ok := b.reserve(b.worstCase(est, func() int64 { return meanOutput }))
	if !ok {
		return nil, false
	}
	var once sync.Once
	return func(u Usage) {
		once.Do(func() { b.settle(h, b.actualCost(est.Model, u)) })
	}, true
}
