package service

import "time"

// Clock is the time a Service reads and waits on: budget periods, runner leases, the
// usage checks of running batches and their completion windows. Tests pass a clock they
// drive, so that lease expiry and the lifecycle's timers need no sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a function that
	// stops the timer and reports whether it stopped it before it fired.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// systemClock is the Clock of the time package.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
