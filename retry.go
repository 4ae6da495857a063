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
// attempts: the upstream's Retry-After when it gave one (with up to 10% jitter added, so a
// crowd of retries does not return at the same instant), otherwise exponential backoff
// with full jitter: a uniform draw from [0, min(max, base·2^(attempt-1))]. rnd is a
// uniform draw from [0, 1).
func backoff(attempt int, retryAfter, base, maxWait time.Duration, rnd float64) time.Duration {
	if retryAfter > 0 {
		return retryAfter + time.Duration(rnd*0.1*float64(retryAfter))
	}
	ceil := maxWait
	if shift := attempt - 1; shift < 30 && base<<shift < maxWait && base<<shift > 0 {
		ceil = base << shift
	}
	return time.Duration(rnd * float64(ceil))
}

// jitter is the process-wide source of backoff jitter.
func jitter() float64 { return rand.Float64() }
