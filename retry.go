package sluice

import (
	"math/rand/v2"
	"time"
)

// Retry defaults.
const (
	DefaultMaxAttempts = 6
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = time.Minute
)

// throttledBase divides the backoff base for a 429 without retry-after: the limiter paces
// the whole run (every retry waits for it too), so the request's own backoff only has to
// keep it from coming straight back. With the full base, the last of 2% random 429s
// finished seconds after the rest of a run.
const throttledBase = 10

// retryDelay is how long a request waits before attempt number attempt+1 after err:
// Backoff, from a tenth of base for a 429 that named no retry-after.
func retryDelay(attempt int, err *UpstreamError, base, maxWait time.Duration, rnd float64) time.Duration {
	if err.Throttled() && err.RetryAfter <= 0 {
		base = max(base/throttledBase, time.Millisecond)
	}
	return Backoff(attempt, err.RetryAfter, base, maxWait, rnd)
}

// jitter is the process-wide source of backoff jitter.
func jitter() float64 { return rand.Float64() }
