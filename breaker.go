package sluice

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Circuit breaker defaults.
const (
	DefaultBreakerFailures = 20
	DefaultBreakerCooldown = 15 * time.Second
)

// Outcomes reported to the breaker. An upstream fault (no answer, 5xx, a broken body)
// counts against it; an answer that proves the upstream is up (2xx, 4xx) counts for it;
// a 429 or an attempt cut short by sluice itself does not count.
var (
	errBreakerFault   = errors.New("upstream fault")
	errBreakerExclude = errors.New("not counted")
)

// breaker stops dispatch when the upstream keeps failing: it opens after failures
// consecutive faults, or when at least 80% of 50 or more attempts in 30 s failed; after
// cooldown it lets one probe through and closes again when the probe succeeds. It wraps
// github.com/sony/gobreaker/v2 and adds what a dispatcher needs: a way to wait, without
// polling, until a request may be sent.
type breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	cooldown time.Duration

	mu       sync.Mutex
	openedAt time.Time
	changed  chan struct{} // closed and replaced on every state change
	trips    int64

	waitHook func() // tests: called when wait is about to block
}

func newBreaker(failures int, cooldown time.Duration) *breaker {
	b := &breaker{cooldown: cooldown, changed: make(chan struct{})}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "upstream",
		MaxRequests: 1,
		Interval:    30 * time.Second,
		Timeout:     cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(failures) ||
				(c.Requests >= 50 && c.TotalFailures*5 >= c.Requests*4)
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if to == gobreaker.StateOpen {
				b.openedAt = time.Now()
				b.trips++
			}
			close(b.changed)
			b.changed = make(chan struct{})
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return errors.Is(err, errBreakerExclude) },
	})
	return b
}

// wait blocks until the breaker lets a request through and returns the callback that
// reports its outcome (nil, errBreakerFault or errBreakerExclude). It returns ctx's error,
// or errStopped when stop is closed first.
func (b *breaker) wait(ctx context.Context, stop <-chan struct{}) (func(error), error) {
	for {
		// Take the change channel before asking: a change between the two (a probe's
		// outcome) then wakes this wait instead of being missed for good.
		b.mu.Lock()
		changed := b.changed
		b.mu.Unlock()
		done, err := b.cb.Allow()
		if err == nil {
			return b.reporter(done), nil
		}
		b.mu.Lock()
		reopen := b.openedAt.Add(b.cooldown)
		b.mu.Unlock()
		var timer <-chan time.Time
		if errors.Is(err, gobreaker.ErrOpenState) {
			t := time.NewTimer(time.Until(reopen))
			defer t.Stop()
			timer = t.C
		}
		if b.waitHook != nil {
			b.waitHook()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-stop:
			return nil, errStopped
		case <-changed:
		case <-timer:
		}
	}
}

// reporter wraps a request's outcome callback. An excluded outcome changes no state, but
// in half-open it frees the probe's place: waiters are woken to take it.
func (b *breaker) reporter(done func(error)) func(error) {
	return func(err error) {
		done(err)
		if errors.Is(err, errBreakerExclude) {
			b.mu.Lock()
			close(b.changed)
			b.changed = make(chan struct{})
			b.mu.Unlock()
		}
	}
}

// open reports whether the breaker is open (or half-open, probing).
func (b *breaker) open() bool { return b.cb.State() != gobreaker.StateClosed }

// tripCount is how many times the breaker opened.
func (b *breaker) tripCount() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.trips
}
