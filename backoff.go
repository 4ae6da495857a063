package sluice

import "time"

// Backoff returns how long to wait before attempt number attempt+1, after attempt failed
// attempts: exponential backoff with full jitter, a uniform draw from
// [0, min(maxWait, base·2^(attempt-1))], but never less than retryAfter, the wait the
// other side asked for (with up to 10% jitter added, so a crowd of retries does not
// return at the same instant). rnd is a uniform draw from [0, 1), so that the wait is
// deterministic in tests.
//
// The engine waits so between the attempts of a request, and sluice serve between the
// attempts of a webhook. The floor alone is not enough: an upstream whose bucket refills
// continuously says "retry in 7ms" to every request of a storm, and a request that heeds
// only that spends its attempts within a second.
func Backoff(attempt int, retryAfter, base, maxWait time.Duration, rnd float64) time.Duration {
	ceil := maxWait
	if shift := attempt - 1; shift < 30 && base<<shift < maxWait && base<<shift > 0 {
		ceil = base << shift
	}
	return max(time.Duration(rnd*float64(ceil)), retryAfter+time.Duration(rnd*0.1*float64(retryAfter)))
}
