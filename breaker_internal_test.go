package sluice

import (
	"context"
	"testing"
	"time"
)

// A half-open breaker whose probe is excluded (a 429, an attempt cut off) lets the next
// waiter through instead of leaving it waiting for a state change that never comes.
func TestBreakerExcludedProbeWakesWaiters(t *testing.T) {
	b := newBreaker(1, time.Millisecond)
	report, err := b.wait(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	report(errBreakerFault) // opens
	probe, err := b.wait(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	blocked := make(chan struct{}, 1)
	b.waitHook = func() { blocked <- struct{}{} }
	got := make(chan func(error), 1)
	go func() {
		r, err := b.wait(context.Background(), nil)
		if err != nil {
			r = nil
		}
		got <- r
	}()
	<-blocked // the waiter found the probe's place taken
	probe(errBreakerExclude)
	select {
	case r := <-got:
		if r == nil {
			t.Fatal("waiter failed")
		}
		r(nil)
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter was not woken after the probe was excluded")
	}
}
