package sluice

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// attemptKind is what an attempt's result means for its request.
type attemptKind int

const (
	attemptDone        attemptKind = iota // a 2xx answer: final
	attemptRetry                          // a retryable failure
	attemptFailed                         // a non-retryable failure: final
	attemptInterrupted                    // cut off by sluice: back to pending, attempt not spent
	attemptAuth                           // 401: the key is wrong
	attemptModel                          // the upstream does not serve the model
	attemptQuota                          // the account's quota or credit is used up
)

// attemptResult is a worker's report on one attempt.
type attemptResult struct {
	item     *Item
	kind     attemptKind
	resp     *Response
	err      *UpstreamError
	latency  time.Duration
	throttle bool
	hold     hold  // reserved against the budget
	weight   int64 // bytes in flight held (inflight.go)
}

// retryItem is a request waiting out its backoff.
type retryItem struct {
	item *Item
	due  time.Time
}

// retryQueue is a min-heap of retries by due time.
type retryQueue []retryItem

func (q retryQueue) Len() int           { return len(q) }
func (q retryQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q retryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *retryQueue) Push(x any)        { *q = append(*q, x.(retryItem)) }
func (q *retryQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// dispatch is the run's event loop. It returns nil when every request is final (never
// because a claim failed: a cancel is not "no work left"), errStopped when the run was
// stopped (its cause says why), or the error that should stop it.
func (r *Run) dispatch(ctx context.Context) error {
	defer r.shutdown()
	for {
		r.collect()
		if r.isStopped() {
			return errStopped
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		it, wake, err := r.next(ctx)
		if err != nil {
			return err
		}
		if it == nil {
			if wake == nil { // nothing left anywhere
				return nil
			}
			if err := r.waitEvent(ctx, wake); err != nil {
				return err
			}
			continue
		}
		h, reserved := r.budget.reserve(r.worstCase(it.Estimate))
		if !reserved {
			r.claimed = append([]Item{*it}, r.claimed...) // not sent: release at shutdown
			if r.running > 0 {
				// Attempts in flight hold worst cases they will mostly not spend: wait
				// for them to settle before deciding the budget is used up.
				if err := r.waitEvent(ctx, nil); err != nil {
					return err
				}
				continue
			}
			if r.budget.holding() {
				// Other runs of a shared pool hold reservations: wait for them too.
				if err := r.waitEvent(ctx, time.After(budgetPoll)); err != nil {
					return err
				}
				continue
			}
			r.budget.refuse()
			r.stopWith(stopBudget, r.budget.exhaustedError())
			return errStopped
		}
		if err := r.send(ctx, it, h); err != nil {
			r.budget.settle(h, hold{})
			r.claimed = append([]Item{*it}, r.claimed...) // not sent: release at shutdown
			return err
		}
	}
}

// next returns the next request to send: a retry that is due, a claimed request, or a
// freshly claimed one. With nothing to send now it returns a channel that signals when
// there may be (nil when the job has nothing left at all).
func (r *Run) next(ctx context.Context) (*Item, <-chan time.Time, error) {
	now := r.e.now()
	if len(r.retries) > 0 && !r.retries[0].due.After(now) {
		ri := heap.Pop(&r.retries).(retryItem)
		return ri.item, nil, nil
	}
	if len(r.claimed) == 0 {
		if err := r.claim(ctx); err != nil {
			return nil, nil, err // the store names the operation ("claim requests: ...")
		}
	}
	if len(r.claimed) > 0 {
		it := &r.claimed[0]
		r.claimed = r.claimed[1:]
		r.claimAheadIfLow(ctx)
		return it, nil, nil
	}
	// Nothing to send now. Wake at the next retry, or poll for lines another worker
	// might release; a nil channel with nothing in flight means the job is finished.
	switch {
	case len(r.retries) > 0:
		return nil, time.After(r.retries[0].due.Sub(now)), nil
	case r.running > 0 || !r.ingestDone.Load():
		return nil, make(chan time.Time), nil // woken by a result or by the ingester
	}
	// This run's last outcomes may still wait in the ledger writer's batch.
	if err := r.flushLedger(ctx); err != nil {
		return nil, nil, err
	}
	// Not Stats: its scans of the whole job cost 0.2 s at the end of 100,000 requests.
	pending, inFlight, err := r.e.store.Unfinished(ctx, r.job.ID)
	if err != nil {
		return nil, nil, err // the store names the operation ("unfinished requests: ...")
	}
	if !pending && !inFlight {
		return nil, nil, nil
	}
	if r.untilIdle && !pending {
		r.othersHold = true
		return nil, nil, nil
	}
	return nil, time.After(r.e.cfg.Lease / 4), nil // other workers hold leases
}

// waitEvent blocks until something may have changed: a worker's result, more input, the
// wake channel, or a stop.
func (r *Run) waitEvent(ctx context.Context, wake <-chan time.Time) error {
	select {
	case res := <-r.finished:
		r.handle(res)
	case <-r.ingested:
	case <-wake:
	case <-r.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// send waits for a concurrency slot, bytes in flight, the breaker and the limiter, then
// starts an attempt. On an error it holds none of them.
func (r *Run) send(ctx context.Context, it *Item, h hold) error {
	for {
		ok, freed := r.e.acquire(r)
		if ok {
			break
		}
		select { // outcomes waiting to be written may hold the slots
		case r.hurry <- struct{}{}:
		default:
		}
		select {
		case res := <-r.finished:
			r.handle(res)
		case <-freed:
		case <-r.stopped:
			r.e.stopWaiting(r)
			return errStopped
		case <-ctx.Done():
			r.e.stopWaiting(r)
			return ctx.Err()
		}
	}
	weight := r.e.bodyWeight(it)
	if err := r.acquireBytes(ctx, weight); err != nil {
		r.e.release(r)
		return err
	}
	release := func() {
		r.e.bytes.Release(weight)
		r.e.release(r)
	}
	if r.isStopped() { // a result handled while waiting for the slot may have stopped the run
		release()
		return errStopped
	}
	report, err := r.e.breaker.wait(ctx, r.stopped)
	if err != nil {
		release()
		return err
	}
	now := r.e.now()
	wait, reserved := r.e.lim.Reserve(now, it.Estimate)
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.stopped:
			t.Stop()
			r.e.lim.Refund(r.e.now(), reserved)
			report(errBreakerExclude)
			release()
			return errStopped
		case <-ctx.Done():
			t.Stop()
			r.e.lim.Refund(r.e.now(), reserved)
			report(errBreakerExclude)
			release()
			return ctx.Err()
		}
	}
	r.running++
	r.inFly.Add(1)
	a := attemptArgs{it: it, reserved: reserved, h: h, weight: weight, report: report, sent: now.Add(wait)}
	select {
	case r.work <- a: // a sender is idle
	default:
		r.senders.Go(func() { r.sender(a) })
	}
	return nil
}

// attemptArgs are an attempt's, as send hands them to a sender. sent is when the limiter
// counted the request sent.
type attemptArgs struct {
	it       *Item
	reserved int64
	h        hold
	weight   int64
	report   func(error)
	sent     time.Time
}

// sender makes attempts until r.work is closed. Senders outlive their attempts so that
// the stack an attempt grows (the HTTP client's calls) is grown once, not per request:
// a goroutine per attempt spent 5% of the CPU at zero latency copying stacks. There are
// at most as many as attempts in flight at once.
func (r *Run) sender(a attemptArgs) {
	for ok := true; ok; a, ok = <-r.work {
		r.attempt(a.it, a.reserved, a.h, a.weight, a.report, a.sent)
	}
}

// attempt sends one request once and reports the result to the dispatcher. sent is when
// the limiter counted it sent: its answer is judged with the requests sent then, not when
// the sender got to send it (later on a loaded machine).
func (r *Run) attempt(it *Item, reserved int64, h hold, weight int64, report func(error), sent time.Time) {
	e := r.e
	ctx, cancel := context.WithTimeout(r.sendCtx, e.cfg.Timeout)
	start := e.now()
	resp, err := e.up.Do(ctx, &it.Request)
	cancel()
	now := e.now()
	res := attemptResult{item: it, resp: resp, latency: now.Sub(start), hold: h, weight: weight}
	if resp != nil {
		e.lim.Observe(now, resp.Limits)
		res.latency = max(res.latency, resp.Latency)
	}
	var ue *UpstreamError
	switch {
	case r.sendCtx.Err() != nil && err != nil:
		res.kind = attemptInterrupted
		report(errBreakerExclude)
	case err == nil:
		res.kind = attemptDone
		e.answered.Store(true)
		e.lim.Answered(now, sent)
		e.lim.Settle(now, reserved, it.Estimate, resp.Usage)
		report(nil)
	case errors.As(err, &ue):
		res.err = ue
		res.kind = classify(ue)
		if ue.Throttled() {
			res.throttle = true
			e.lim.Throttled(now, sent, ue.RetryAfter)
			report(errBreakerExclude)
		} else {
			if resp != nil && res.kind != attemptAuth && res.kind != attemptModel {
				e.lim.Answered(now, sent) // a rejected key or model proves nothing about capacity
			}
			if ue.StatusCode == 0 || ue.StatusCode >= 500 || ue.StatusCode < 300 {
				report(errBreakerFault)
			} else {
				report(nil)
			}
		}
		if ue.StatusCode >= 400 && ue.StatusCode < 500 && ue.StatusCode != http.StatusNotFound && res.kind == attemptFailed {
			e.answered.Store(true) // the key works: a 400 is about the request
		}
	default:
		res.err = &UpstreamError{Code: CodeConnection, Message: err.Error(), Err: err}
		res.kind = attemptRetry
		report(errBreakerFault)
	}
	r.weigh(&res, now)
	r.finished <- res
}

// classify says what an upstream error means for its request.
func classify(ue *UpstreamError) attemptKind {
	switch {
	case ue.StatusCode == http.StatusUnauthorized:
		return attemptAuth
	case ue.Code == CodeInsufficientQuota:
		return attemptQuota
	case ue.Code == CodeModelNotFound:
		return attemptModel
	case ue.Retryable():
		return attemptRetry
	default:
		return attemptFailed
	}
}

// collect handles every result that is already waiting, without blocking.
func (r *Run) collect() {
	for {
		select {
		case res := <-r.finished:
			r.handle(res)
		default:
			return
		}
	}
}

// handle turns an attempt's result into a ledger outcome or a retry.
func (r *Run) handle(res attemptResult) {
	r.running--
	r.inFly.Add(-1)
	r.e.bytes.Release(res.weight) // the answer is in: the body is no longer in flight
	r.holdingSlot = true          // freed by the ledger writer once the outcome is written
	defer func() {
		if r.holdingSlot { // no outcome was written (cannot happen today)
			r.holdingSlot = false
			r.e.release(r)
		}
	}()
	it := res.item
	if res.resp != nil {
		r.budget.settle(res.hold, r.actualCost(it.Estimate.Model, res.resp.Usage))
	} else {
		r.budget.settle(res.hold, hold{})
	}
	if res.kind == attemptInterrupted {
		r.observe(&res, AttemptInterrupted)
		r.writeOutcome(Outcome{Line: it.Line, State: StatePending, Attempts: it.Attempts, Throttled: it.Throttled})
		return
	}
	attempts := it.Attempts + 1
	if res.throttle {
		it.Throttled++
		r.throttledCount.Add(1)
	}
	r.observe(&res, r.attemptKind(&res, attempts))
	o := Outcome{Line: it.Line, Attempts: attempts, Throttled: it.Throttled, Latency: res.latency}
	if res.resp != nil {
		o.StatusCode, o.RequestID, o.Body, o.Usage = res.resp.StatusCode, res.resp.RequestID, res.resp.Body, res.resp.Usage
	}
	if res.err != nil && (res.resp == nil || res.err.StatusCode/100 == 2) {
		o.ErrorCode, o.ErrorMessage = res.err.Code, res.err.Error()
		if res.resp != nil && res.err.StatusCode/100 == 2 {
			o.StatusCode, o.Body = 0, nil // a broken 2xx body is no answer
		}
	}
	if res.resp != nil {
		r.addUsage(it.Estimate.Model, res.resp.Usage)
	}
	switch res.kind {
	case attemptDone:
		o.State = StateDone
		r.final(it, o)
	case attemptQuota:
		// The account can pay for nothing more: every request would fail the same way.
		r.abort(r.fatal(res))
		r.writeOutcome(Outcome{Line: it.Line, State: StatePending, Attempts: it.Attempts, Throttled: it.Throttled})
		return
	case attemptAuth, attemptModel, attemptUnreachable, attemptNoEndpoint:
		if res.kind != attemptAuth || !r.e.answered.Load() {
			// The key, the model or the upstream is wrong for the whole run (see weigh).
			// Stop before spending more, and leave the request pending for the rerun.
			r.abort(r.fatal(res))
			r.writeOutcome(Outcome{Line: it.Line, State: StatePending, Attempts: it.Attempts, Throttled: it.Throttled})
			return
		}
		o.State = StateFailed
		r.final(it, o)
	case attemptRetry:
		if r.attemptsUsedUp(it, attempts) {
			o.State = StateFailed
			r.final(it, o)
			return
		}
		it.Attempts = attempts
		r.retriesCount.Add(1)
		o.State = StateInFlight
		r.writeOutcome(o)
		// The backoff grows with the attempts charged: a run of random 429s, a quarter
		// each, does not leave a request waiting out seconds after the rest of the run.
		delay := retryDelay(charged(it, attempts), res.err, r.e.cfg.BackoffBase, r.e.cfg.BackoffMax, jitter())
		heap.Push(&r.retries, retryItem{item: it, due: r.e.now().Add(delay)})
	default:
		o.State = StateFailed
		r.final(it, o)
	}
}

// attemptKind says how an attempt ended, for the Observer.
func (r *Run) attemptKind(res *attemptResult, attempts int) AttemptKind {
	switch {
	case res.kind == attemptDone:
		return AttemptOK
	case res.kind == attemptRetry && !r.attemptsUsedUp(res.item, attempts):
		if res.throttle {
			return AttemptThrottled
		}
		return AttemptRetry
	}
	return AttemptFailed
}

// attemptsUsedUp reports whether a request that failed its attempts-th attempt has no
// attempt left. A 429 is the upstream pacing the whole run, not this request failing,
// so it counts a quarter of an attempt: with the default of 6 attempts a request fails
// on 429s alone after its 21st.
func (r *Run) attemptsUsedUp(it *Item, attempts int) bool {
	return charged(it, attempts) >= r.e.cfg.MaxAttempts
}

// charged is how many of a request's attempts count, a 429 a quarter.
func charged(it *Item, attempts int) int {
	throttled := min(it.Throttled, attempts)
	return attempts - throttled + (throttled+3)/4
}

// fatal builds the error that aborts a run whose key or model is wrong.
func (r *Run) fatal(res attemptResult) error {
	base := r.e.up.BaseURL()
	switch res.kind {
	case attemptAuth:
		return fmt.Errorf("%w by %s: %s", ErrAuth, base, res.err.Message)
	case attemptQuota:
		return fmt.Errorf("%w at %s: %s", ErrQuota, base, res.err.Message)
	}
	return r.verdictError(res)
}

// final writes a final outcome and counts it.
func (r *Run) final(it *Item, o Outcome) {
	o.Line = it.Line
	if o.FinishedAt.IsZero() {
		o.FinishedAt = r.e.now()
	}
	if o.State == StateDone {
		r.doneCount.Add(1)
	} else {
		r.failedCount.Add(1)
	}
	r.writeOutcome(o)
}

// writeOutcome hands o to the ledger writer, with the concurrency slot of the attempt
// being handled, if any: the writer frees it once o is committed, so that answers
// waiting to be written count against the concurrency, and a crash re-pays at most the
// concurrency.
func (r *Run) writeOutcome(o Outcome) {
	r.outcomes <- ledgerWrite{outcome: o, slot: r.holdingSlot}
	r.holdingSlot = false
}

// flushLedger waits until every outcome written so far is in the store.
func (r *Run) flushLedger(ctx context.Context) error {
	done := make(chan error, 1)
	r.outcomes <- ledgerWrite{flushed: done}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown waits for the attempts in flight, then releases every request this run still
// holds (claimed, or waiting to be retried) back to pending.
func (r *Run) shutdown() {
	// After a drain, let the attempts in flight finish; a cut-off (or a cancel of ctx)
	// has cancelled them already.
	for r.running > 0 {
		r.handle(<-r.finished)
	}
	for _, ri := range r.retries {
		r.writeOutcome(Outcome{Line: ri.item.Line, State: StatePending, Attempts: ri.item.Attempts, Throttled: ri.item.Throttled})
	}
	r.retries = nil
	if r.ahead != nil { // its rows are this run's: release them with the rest
		res := <-r.ahead
		r.ahead = nil
		r.claimed = append(r.claimed, res.items...)
	}
	for _, it := range r.claimed {
		r.writeOutcome(Outcome{Line: it.Line, State: StatePending, Attempts: it.Attempts, Throttled: it.Throttled})
	}
	r.claimed = nil
	r.cancelSends(errStopped)
}

func (r *Run) addUsage(model string, u Usage) {
	if u == (Usage{}) {
		return
	}
	r.usageMu.Lock()
	defer r.usageMu.Unlock()
	r.usage = r.usage.Add(u)
	if r.e.cfg.Cost != nil {
		r.cost += r.e.cfg.Cost(model, u)
	}
}

// Progress is a snapshot of a run, for progress displays.
type Progress struct {
	// Total is the number of input lines in the ledger so far; IngestDone is set once the
	// whole input is in.
	Total      int64
	IngestDone bool
	// Done and Failed count final requests, including those of earlier runs of the job.
	Done, Failed int64
	InFlight     int64
	// Retries and Throttled count this run's retried attempts and 429 answers.
	Retries, Throttled int64
	// Usage and Cost are this run's.
	Usage Usage
	Cost  float64
	// Elapsed is this run's wall time.
	Elapsed time.Duration
	Limits  Limits
	// BreakerOpen reports whether the circuit breaker is open now; BreakerTrips counts how
	// often it opened since the Engine was made.
	BreakerOpen  bool
	BreakerTrips int64
	// Faults counts the upstream's faults (no answer, 5xx, a broken body) since the
	// Engine was made; LastError is the last one's message. FailingSince is when the
	// upstream started failing, zero when its last answer was good.
	Faults       int64
	LastError    string
	FailingSince time.Time
	// UsageCounted counts the answers without usage whose tokens were counted by sluice
	// (Response.UsageCounted), since the Engine was made.
	UsageCounted int64
}

// Progress returns a snapshot of the run.
func (r *Run) Progress() Progress {
	r.usageMu.Lock()
	u, c := r.usage, r.cost
	r.usageMu.Unlock()
	faults, lastErr, failing, counted := r.e.ev.health()
	return Progress{
		UsageCounted: counted,
		Faults:       faults,
		LastError:    lastErr,
		FailingSince: failing,
		Total:        r.total.Load(),
		IngestDone:   r.ingestDone.Load(),
		Done:         r.doneCount.Load(),
		Failed:       r.failedCount.Load(),
		InFlight:     r.inFly.Load(),
		Retries:      r.retriesCount.Load(),
		Throttled:    r.throttledCount.Load(),
		Usage:        u,
		Cost:         c,
		Elapsed:      r.e.now().Sub(r.started),
		Limits:       r.e.lim.Limits(),
		BreakerOpen:  r.e.breaker.open(),
		BreakerTrips: r.e.breaker.tripCount(),
	}
}
