package testutil

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Clock is a clock that moves only when the test advances it (a service.Clock): tests
// of timers and leases need no sleeping. Its methods are safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed, and replaced, whenever a timer is added or fires
}

type fakeTimer struct {
	at time.Time
	d  time.Duration
	c  chan time.Time
}

// NewClock returns a Clock that reads the present time until it is advanced.
func NewClock() *Clock {
	return &Clock{now: time.Now(), changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a channel that receives once the clock has been advanced by d, and
// a function that stops the timer and reports whether it had not fired.
func (c *Clock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), d: d, c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t.c, func() bool { return false }
	}
	c.timers = append(c.timers, t)
	c.notify()
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// notify wakes the waiters of WaitTimers; c.mu is held.
func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the clock on by d and fires the timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		t.c <- c.now
		return true
	})
	c.notify()
}

// WaitTimers waits until n timers of duration d are set: the goroutines that set them
// are waiting on the clock. It fails the test after 30 s.
func (c *Clock) WaitTimers(t testing.TB, d time.Duration, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second) // a failure, not a wait
	for {
		c.mu.Lock()
		got := 0
		for _, tm := range c.timers {
			if tm.d == d {
				got++
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%d timers of %v set, want %d", got, d, n)
		}
	}
}
