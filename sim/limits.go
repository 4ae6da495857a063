package sim

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// limiter enforces RPM and TPM like OpenAI: each is a token bucket whose capacity is the
// limit and which refills continuously at the limit per minute, so that a client pacing
// itself to the limit is never refused and a burst of a minute's worth is allowed.
type limiter struct {
	mu       sync.Mutex
	req, tok bucket
}

// bucket is one limit, kept as the generic cell rate algorithm keeps a token bucket: as
// the time at which it will be full again (full is the time of a bucket that is full).
// Taking n takes n × a minute / limit off the bucket's level, which adds that much to
// full; a request fits while full stays within a minute of now. Durations are whole
// nanoseconds, so waits and levels come out exact. A zero limit is no limit.
type bucket struct {
	limit int64
	full  time.Time
}

// cost is the time the bucket takes to refill n.
func (b *bucket) cost(n int64) time.Duration {
	return time.Duration(math.Round(float64(n) * float64(time.Minute) / float64(b.limit)))
}

// used is the time until the bucket is full again.
func (b *bucket) used(now time.Time) time.Duration { return max(b.full.Sub(now), 0) }

// wait is how long until the bucket holds n.
func (b *bucket) wait(now time.Time, n int64) time.Duration {
	if b.limit == 0 {
		return 0
	}
	return max(b.used(now)+b.cost(n)-time.Minute, 0)
}

// take takes n from the bucket.
func (b *bucket) take(now time.Time, n int64) {
	if b.limit > 0 {
		b.full = now.Add(b.used(now) + b.cost(n))
	}
}

// units converts a time of refill to the units it refills, rounded down, or up with ceil.
func (b *bucket) units(d time.Duration, ceil bool) int64 {
	hi, lo := bits.Mul64(uint64(b.limit), uint64(d))
	q, r := bits.Div64(hi, lo, uint64(time.Minute)) // hi < a minute: d is at most one
	if ceil && r > 0 {
		q++
	}
	return int64(q)
}

// state is the bucket as the rate-limit headers describe it: its limit, what remains and
// the time until it is full again.
func (b *bucket) state(now time.Time) limitState {
	if b.limit == 0 {
		return limitState{}
	}
	used := b.used(now)
	return limitState{limit: b.limit, remaining: b.units(time.Minute-used, false), reset: used}
}

// limitState is one limit's headers; a zero limit means no headers.
type limitState struct {
	limit, remaining int64
	reset            time.Duration
}

// admission is the limiter's verdict on a request.
type admission struct {
	ok bool
	// which is the limit that refused the request, "requests" or "tokens"; tooLarge
	// means the request needs more tokens than the TPM limit holds, so it never passes.
	which    string
	tooLarge bool
	// wait is how long until both limits would admit the request.
	wait time.Duration
	// limit, used and need describe the refusing limit: its size, what is used of it and
	// what the request needs.
	limit, used, need int64
	req, tokens       limitState
}

func newLimiter(rpm, tpm int64) *limiter {
	return &limiter{req: bucket{limit: rpm}, tok: bucket{limit: tpm}}
}

// admit takes one request and tokens from the buckets if both hold enough, and tells
// when they will if not. Nothing is taken from either bucket when the request is refused.
func (l *limiter) admit(now time.Time, tokens int64) admission {
	l.mu.Lock()
	defer l.mu.Unlock()
	var a admission
	waitReq, waitTok := l.req.wait(now, 1), l.tok.wait(now, tokens)
	switch {
	case l.tok.limit > 0 && tokens > l.tok.limit:
		a.which, a.tooLarge, a.limit, a.need = "tokens", true, l.tok.limit, tokens
	case waitReq > 0:
		a.which, a.limit, a.need = "requests", l.req.limit, 1
		a.used = l.req.units(l.req.used(now), true)
	case waitTok > 0:
		a.which, a.limit, a.need = "tokens", l.tok.limit, tokens
		a.used = l.tok.units(l.tok.used(now), true)
	default:
		a.ok = true
		l.req.take(now, 1)
		l.tok.take(now, tokens)
	}
	if !a.ok && !a.tooLarge {
		a.wait = max(waitReq, waitTok)
	}
	a.req, a.tokens = l.req.state(now), l.tok.state(now)
	return a
}

// peek returns the limits' state without taking anything.
func (l *limiter) peek(now time.Time) (req, tokens limitState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.req.state(now), l.tok.state(now)
}

// formatReset formats a reset time as OpenAI does, in Go's duration syntax rounded up to
// the millisecond: "0s", "6ms", "1.5s", "6m0s".
func formatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return ((d + time.Millisecond - 1) / time.Millisecond * time.Millisecond).String() //nolint:durationcheck // rounds up to whole milliseconds
}
