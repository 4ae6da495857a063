package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

// errCutOff is the cause of a command's context when Ctrl-C cut it off.
var errCutOff = errors.New("interrupted: cut off")

// How a command drains on the first Ctrl-C.
const (
	// drainRuns: the runs started under the context stop sending and let their requests
	// in flight finish (sluice.WithDrain). With no run going, the first Ctrl-C cuts off at
	// once: there is nothing to wait for (a batch watch stops polling).
	drainRuns = iota
	// drainSelf: the command watches interrupt.draining itself (a server shutting down
	// gracefully); only a second Ctrl-C or the end of the grace cuts it off.
	drainSelf
)

// interrupt is every command's answer to Ctrl-C and SIGTERM: the first drains, and the
// second, or the end of the grace period after the first, cuts off by cancelling ctx
// (with cause errCutOff). This is the one place that reads the signals.
type interrupt struct {
	// ctx is the command's context: cancelled on the cut.
	ctx context.Context
	// draining is closed by the first signal.
	draining <-chan struct{}
	done     chan struct{}
	finished chan struct{}
	cancel   context.CancelCauseFunc
}

// newInterrupt starts answering e's interrupts for a command running under ctx; note, if
// not empty, is printed with the first. Call stop when the command ends.
func newInterrupt(ctx context.Context, e *env, grace time.Duration, mode int, note string) *interrupt {
	ctx, cancel := context.WithCancelCause(ctx)
	ctx, drain := sluice.WithDrain(ctx)
	draining := make(chan struct{})
	in := &interrupt{ctx: ctx, draining: draining, done: make(chan struct{}), finished: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(in.finished)
		select {
		case <-e.interrupts:
		case <-in.done:
			return
		}
		n := drain() // the runs are told before draining is closed
		close(draining)
		if n == 0 && mode == drainRuns {
			cancel(errCutOff)
			fmt.Fprintln(e.stderr, "\nstopping"+note)
			return
		}
		fmt.Fprintf(e.stderr, "\nstopping: requests in flight may finish for up to %s (Ctrl-C again to cut them off)%s\n", grace, note)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-e.interrupts:
			fmt.Fprintln(e.stderr, "cutting off requests in flight: they return to pending")
		case <-t.C:
			fmt.Fprintf(e.stderr, "the %s grace is over: cutting off requests in flight: they return to pending\n", grace)
		case <-in.done:
			return
		}
		cancel(errCutOff)
	}()
	return in
}

// stop ends the answering, waits for it to end and releases ctx. Call it once.
func (in *interrupt) stop() {
	close(in.done)
	<-in.finished
	in.cancel(context.Canceled)
}

// cutOff reports whether the command was cut off by Ctrl-C.
func (in *interrupt) cutOff() bool { return errors.Is(context.Cause(in.ctx), errCutOff) }
