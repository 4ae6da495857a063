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

// backoff returns how long to wait before attempt number attempt+1, after attempt failed
// attempts: exponential backoff with full jitter, a uniform draw from
// [0, min(max, base·2^(attempt-1))], but never less than the upstream's Retry-After
// (with up to 10% jitter added, so a crowd of retries does not return at the same
// instant). The floor alone is not enough: an upstream whose bucket refills continuously
// says "retry in 7ms" to every request of a storm, and a request that heeds only that
// spends its attempts within a second. rnd is a uniform draw from [0, 1).
func backoff(attempt int, retryAfter, base, maxWait time.Duration, rnd float64) time.Duration {
	ceil := maxWait
	if shift := attempt - 1; shift < 30 && base<<shift < maxWait && base<<shift > 0 {
		ceil = base << shift
	}
	return max(time.Duration(rnd*float64(ceil)), retryAfter+time.Duration(rnd*0.1*float64(retryAfter)))
}

// throttledBase divides the backoff base for a 429 without retry-after: the limiter paces
// the whole run (every retry waits for it too), so the request's own backoff only has to
// keep it from coming straight back. With the full base, the last of 2% random 429s
// finished seconds after the rest of a run.
const throttledBase = 10

// retryDelay is how long a request waits before attempt number attempt+1 after err:
// backoff, from a tenth of base for a 429 that named no retry-after.
func retryDelay(attempt int, err *UpstreamError, base, maxWait time.Duration, rnd float64) time.Duration {
	if err.Throttled() && err.RetryAfter <= 0 {
		base = max(base/throttledBase, time.Millisecond)
	}
	return backoff(attempt, err.RetryAfter, base, maxWait, rnd)
}

// jitter is the process-wide source of backoff jitter.
func jitter() float64 { return rand.Float64() }
