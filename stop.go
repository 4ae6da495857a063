package sluice

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// A run stops early for one of these reasons. When several race (a Ctrl-C while the
// ledger fails, say), the strongest is the one the run ends with: sluice's own failure,
// then a fatal upstream answer, then the budget, then a cut-off, then a drain.
type stopKind int

const (
	stopNone    stopKind = iota
	stopDrain            // Stop or Drain: take nothing more, let requests in flight finish
	stopCancel           // StopAndCancel or the Start context: requests in flight are cut off
	stopBudget           // the next request could have crossed the budget
	stopAbort            // a fatal upstream answer: rejected key, unknown model, no quota
	stopFailure          // sluice's own failure: the ledger or the input could not be used
)

// errStopped is what dispatch returns when the run was stopped; the stop's cause says why.
var errStopped = errors.New("dispatch stopped")

// Causes of the stops asked for by the run's user, as the run's send context carries them.
var (
	errDrained = fmt.Errorf("%w: stopped, requests in flight finished", ErrInterrupted)
	errCutOff  = fmt.Errorf("%w: requests in flight cut off", ErrInterrupted)
)

// stopWith stops the run for kind, recording cause unless a stronger stop came first.
// Every stop ends dispatch; all but a drain and the budget also cut off the requests in
// flight (they go back to pending without spending an attempt).
func (r *Run) stopWith(kind stopKind, cause error) {
	r.stopMu.Lock()
	if kind > r.stopKind {
		r.stopKind, r.stopCause = kind, cause
	}
	r.stopMu.Unlock()
	r.stopOnce.Do(func() { close(r.stopped) })
	if kind != stopDrain && kind != stopBudget {
		r.cancelSends(cause)
	}
}

// abort stops the run for a fatal upstream answer.
func (r *Run) abort(err error) { r.stopWith(stopAbort, err) }

// fail stops the run for sluice's own failure.
func (r *Run) fail(err error) { r.stopWith(stopFailure, err) }

// cancelled records that the Start context was cancelled: a cut-off, never "no work".
func (r *Run) cancelled(ctx context.Context) {
	cause := context.Cause(ctx)
	if !errors.Is(cause, ErrInterrupted) {
		cause = fmt.Errorf("%w: %w", ErrInterrupted, cause)
	}
	r.stopWith(stopCancel, cause)
}

// stopState returns why the run stopped (stopNone and nil when it was not).
func (r *Run) stopState() (stopKind, error) {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	return r.stopKind, r.stopCause
}

// Stop stops the run gracefully: nothing more is sent, and the requests in flight finish
// and are recorded. It waits for the run to end, or for ctx to be done, then returning
// ctx's error while the run goes on stopping (call StopAndCancel to cut it short). The
// job ends interrupted (Wait returns an error wrapping ErrInterrupted) unless every
// request was final anyway. Safe to call more than once and with StopAndCancel.
func (r *Run) Stop(ctx context.Context) error {
	r.stopWith(stopDrain, errDrained)
	return r.awaitStop(ctx)
}

// StopAndCancel stops the run at once: nothing more is sent, and the requests in flight
// are cut off and go back to pending without spending an attempt. Answers that already
// came are still recorded. It waits for the run to end or for ctx to be done. Cancelling
// the context given to Engine.Start does the same.
func (r *Run) StopAndCancel(ctx context.Context) error {
	r.stopWith(stopCancel, errCutOff)
	return r.awaitStop(ctx)
}

// Drain stops dispatching new requests and lets those in flight finish, without waiting.
//
// Deprecated: use Stop, which also waits for the run to end.
func (r *Run) Drain() { r.stopWith(stopDrain, errDrained) }

func (r *Run) awaitStop(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Run) isStopped() bool {
	select {
	case <-r.stopped:
		return true
	default:
		return false
	}
}

// drainKey is the context key of WithDrain's signal.
type drainKey struct{}

// drainSignal is WithDrain's signal: the runs started under it that have not ended, and
// whether drain was called.
type drainSignal struct {
	mu      sync.Mutex
	runs    map[*Run]struct{}
	drained bool
}

// WithDrain returns a copy of parent and a function that stops, as Run.Stop does, every
// run started under the copy (by Engine.Start directly, or by code such as a pipeline
// that starts runs itself), and every run started under it later. When drain returns,
// the runs have been told: nothing more is sent. It returns how many runs were going,
// so that a caller with nothing to drain can cut off at once. So a program's first
// Ctrl-C can drain whatever it is running, and its second cut it off by cancelling the
// context. Calling drain more than once is harmless.
func WithDrain(parent context.Context) (ctx context.Context, drain func() (runs int)) {
	sig := &drainSignal{runs: map[*Run]struct{}{}}
	return context.WithValue(parent, drainKey{}, sig), func() int {
		sig.mu.Lock()
		defer sig.mu.Unlock()
		sig.drained = true
		for r := range sig.runs {
			r.stopWith(stopDrain, errDrained)
		}
		return len(sig.runs)
	}
}

// watchDrain makes the run stop when the WithDrain signal of ctx fires; the returned
// function stops watching.
func (r *Run) watchDrain(ctx context.Context) func() {
	sig, ok := ctx.Value(drainKey{}).(*drainSignal)
	if !ok {
		return func() {}
	}
	sig.mu.Lock()
	defer sig.mu.Unlock()
	if sig.drained {
		r.stopWith(stopDrain, errDrained)
		return func() {}
	}
	sig.runs[r] = struct{}{}
	return func() {
		sig.mu.Lock()
		defer sig.mu.Unlock()
		delete(sig.runs, r)
	}
}

// outcome maps how the run stopped to the job's final state and Wait's error. finished
// says that dispatch found every request final (or, with StopWhenIdle, held by others).
func (r *Run) outcome(finished bool) (JobState, string, error) {
	kind, cause := r.stopState()
	switch {
	case kind == stopFailure:
		return JobFailed, reason(cause), fmt.Errorf("%w: %w", ErrFailed, cause)
	case kind == stopAbort:
		return JobAborted, reason(cause), &abortError{cause: cause}
	case kind == stopBudget:
		return JobBudget, reason(cause), cause
	case finished && r.othersHold:
		return JobRunning, "", nil // other owners still hold requests
	case finished:
		return JobCompleted, "", nil
	default: // a drain or a cut-off
		return JobInterrupted, "interrupted", ErrInterrupted
	}
}

// reason is what the record of a job that cause stopped says about it: cause's message,
// but one that opens with a sentinel error of sluice (fmt.Errorf("%w by %s", ErrAuth, …))
// says the sentinel's reason, without the package's name: "API key rejected by …", as
// sluice show prints it after "reason:".
func reason(cause error) string {
	msg := cause.Error()
	var s *sentinel
	if errors.As(cause, &s) {
		if rest, ok := strings.CutPrefix(msg, s.Error()); ok {
			return s.reason + rest
		}
	}
	return msg
}
