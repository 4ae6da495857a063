package sluice

import (
	"math"
	"sync"
	"time"
)

// bucket is a token bucket whose balance may go negative: a take larger than what is
// available is granted at once as debt, and the caller waits until the debt is repaid.
// This lets a single request larger than the burst through (golang.org/x/time/rate refuses
// it) and lets an estimate be settled afterwards with what the answer really cost.
// A zero rate means unlimited. The zero value is unlimited. Not safe for concurrent use:
// limiter guards it.
type bucket struct {
	rate   float64 // tokens per second; 0 = unlimited
	burst  float64 // most tokens the bucket holds
	tokens float64
	last   time.Time
}

func (b *bucket) advance(now time.Time) {
	if b.rate == 0 {
		return
	}
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
}

// take removes n tokens at now and returns how long to wait until the balance is back at
// zero (0 when n was available).
func (b *bucket) take(now time.Time, n float64) time.Duration {
	if b.rate == 0 {
		return 0
	}
	b.advance(now)
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// give returns n tokens (n < 0 takes more), capped at the burst.
func (b *bucket) give(now time.Time, n float64) {
	if b.rate == 0 {
		return
	}
	b.advance(now)
	b.tokens = math.Min(b.burst, b.tokens+n)
}

// set changes the rate and burst, keeping the balance (capped at the new burst). A bucket
// that was unlimited starts full.
func (b *bucket) set(now time.Time, rate, burst float64) {
	if rate <= 0 {
		*b = bucket{}
		return
	}
	wasUnlimited := b.rate == 0
	b.advance(now)
	b.rate, b.burst = rate, math.Max(burst, 1)
	if wasUnlimited {
		b.tokens, b.last = b.burst, now
	}
	b.tokens = math.Min(b.tokens, b.burst)
}

// ceil lowers the balance to at most n.
func (b *bucket) ceil(now time.Time, n float64) {
	if b.rate == 0 {
		return
	}
	b.advance(now)
	b.tokens = math.Min(b.tokens, n)
}

// Limiter tuning. The safety factor keeps sluice a hair under a learned limit so that
// clock skew and jitter between sluice and the provider do not turn into 429s.
const (
	learnedSafety   = 0.99
	slowStartWindow = 8    // requests in flight before the upstream's limits are known
	minWindow       = 4    // a 429 halves the window down to this: the rate, not the window, paces
	aimdDecrease    = 0.85 // rate kept after a 429 from an upstream without limit headers
	aimdIncrease    = 0.05 // rate growth per second without a 429 (fraction of the rate)
	congestionGap   = 500 * time.Millisecond
	stormGap        = 100 * time.Millisecond
	stormPause      = time.Second
	shareWeight     = 0.05 // of each answer in the moving average of 429s
	throttleBase    = 500 * time.Millisecond
	throttleMax     = time.Minute
)

// limiter decides when the dispatcher may send the next request. It combines the user's
// RPM and TPM caps, the limits learned from the upstream's x-ratelimit headers, a pause
// of the whole dispatcher after a 429, and, for an upstream that sends no limit headers,
// additive-increase/multiplicative-decrease of the request rate and a slow start of the
// concurrency window. Safe for concurrent use; time is passed in so tests are exact.
type limiter struct {
	mu sync.Mutex

	maxRPM, maxTPM float64 // user caps; 0 = none
	maxWindow      int     // the concurrency cap

	req, tok bucket

	// learned reports that the upstream's limit headers have been seen.
	learnedReq, learnedTok bool
	// window is how many requests may be in flight; it grows from slowStartWindow to
	// maxWindow while no limits are known and no 429 has been seen.
	window float64
	// aimdRate is the request rate found by AIMD for an upstream without limit headers
	// (0: no 429 seen yet); aimdAt is when it last moved.
	aimdRate float64
	aimdAt   time.Time

	pausedUntil  time.Time
	lastThrottle time.Time
	// lastCut is when the window and rate were last cut for a 429: later 429s within
	// congestionGap belong to the same congestion event.
	lastCut        time.Time
	consecutive429 int

	// meter measures answered requests per second, for AIMD.
	meter rateMeter
	// share429 is a moving average of 429-ness over the last few dozen answers (1 for a
	// 429, 0 for anything else): above one half, the run is in a 429 storm.
	share429 float64
	// avgOut is the mean completion tokens seen, reserved for requests with no max_tokens.
	avgOut  float64
	outSeen int64
}

func newLimiter(now time.Time, concurrency int, rpm, tpm float64) *limiter {
	l := &limiter{maxRPM: rpm, maxTPM: tpm, maxWindow: concurrency, window: float64(concurrency)}
	if rpm > 0 {
		l.req.set(now, rpm/60, rpm/60)
	}
	if tpm > 0 {
		l.tok.set(now, tpm/60, tpm/60)
	}
	if rpm == 0 && tpm == 0 {
		l.window = math.Min(float64(concurrency), slowStartWindow)
	}
	return l
}

// Window is how many requests may be in flight now.
func (l *limiter) Window() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(1, int(l.window))
}

// Reserve takes one request and est's tokens and returns how long the caller must wait
// before sending. reserved is the token count taken, to be passed to Settle.
func (l *limiter) Reserve(now time.Time, est Estimate) (wait time.Duration, reserved int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.growAIMD(now)
	reserved = est.Reserve()
	if est.MaxOutputTokens == 0 {
		reserved += int64(l.avgOut)
	}
	wait = max(l.pausedUntil.Sub(now), l.req.take(now, 1), l.tok.take(now, float64(reserved)))
	return max(wait, 0), reserved
}

// Settle corrects a reservation with what the answer says the request cost. Providers
// count a request's output bound (max_tokens), not its actual output, against the TPM
// limit at admission, so a request with a bound is settled for its prompt only; one
// without a bound is settled for its actual usage. An answer without usage changes
// nothing.
func (l *limiter) Settle(now time.Time, reserved int64, est Estimate, u Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u.CompletionTokens == 0 && u.PromptTokens == 0 {
		return
	}
	cost := u.Total()
	if est.MaxOutputTokens > 0 {
		cost = u.PromptTokens + est.MaxOutputTokens
	} else {
		l.outSeen++
		l.avgOut += (float64(u.CompletionTokens) - l.avgOut) / float64(min(l.outSeen, 100))
	}
	l.tok.give(now, float64(reserved-cost))
}

// Refund returns a reservation whose request was never sent.
func (l *limiter) Refund(now time.Time, reserved int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.req.give(now, 1)
	l.tok.give(now, float64(reserved))
}

// Answered records an answer that was not a 429: the window grows while the upstream's
// limits are unknown (slow start) and the rate meter counts it.
func (l *limiter) Answered(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.consecutive429 = 0
	l.meter.add(now)
	l.share429 -= shareWeight * l.share429
	switch {
	case l.window >= float64(l.maxWindow):
	case l.lastThrottle.IsZero():
		l.window++ // slow start: doubles every round trip
	default:
		l.window += 1 / l.window // congestion avoidance: one more every round trip
	}
	l.window = math.Min(l.window, float64(l.maxWindow))
}

// Observe learns the upstream's limits from an answer's headers.
func (l *limiter) Observe(now time.Time, rl RateLimits) {
	if !rl.Known() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if rl.HasRequests && rl.LimitRequests > 0 {
		rate := learnedSafety * float64(rl.LimitRequests) / 60
		if l.maxRPM > 0 {
			rate = math.Min(rate, l.maxRPM/60)
		}
		if rate != l.req.rate {
			l.req.set(now, rate, rate)
		}
		l.req.ceil(now, float64(rl.RemainingRequests))
		l.learnedReq = true
	}
	if rl.HasTokens && rl.LimitTokens > 0 {
		rate := learnedSafety * float64(rl.LimitTokens) / 60
		if l.maxTPM > 0 {
			rate = math.Min(rate, l.maxTPM/60)
		}
		if rate != l.tok.rate {
			l.tok.set(now, rate, rate)
		}
		l.tok.ceil(now, float64(rl.RemainingTokens))
		l.learnedTok = true
	}
	l.window = float64(l.maxWindow)
	l.aimdRate = 0
}

// Throttled records a 429 and pauses the whole dispatcher: for the time the upstream asked
// (retryAfter > 0), or an exponential backoff. For an upstream without limit headers it
// also cuts the request rate to a little under what was being achieved.
func (l *limiter) Throttled(now time.Time, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.consecutive429++
	pause := retryAfter
	if pause <= 0 {
		pause = min(throttleMax, throttleBase<<min(l.consecutive429-1, 10))
	}
	if until := now.Add(pause); until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	// The answers in flight when the limit was hit all come back 429 together: that is
	// one congestion event, not many. 429s that keep coming a gap after the last cut are
	// a new event: the cut was not deep enough.
	l.lastThrottle = now
	l.share429 += shareWeight * (1 - l.share429)
	storm := l.share429 > 0.5
	gap := congestionGap
	if storm {
		// A storm: more 429s than answers. Cut again soon, and stop everyone for a
		// moment so the attempts in flight come back before more are sent.
		gap = stormGap
		if until := now.Add(stormPause); until.After(l.pausedUntil) {
			l.pausedUntil = until
		}
	}
	congested := now.Sub(l.lastCut) >= gap
	l.req.ceil(now, 0)
	if l.learnedReq || l.learnedTok || !congested {
		return
	}
	l.lastCut = now
	l.window = math.Max(minWindow, l.window/2)
	achieved := l.meter.rate(now)
	if achieved < 1 {
		return // nothing measured yet: the smaller window and the pause must do
	}
	switch {
	case storm && l.aimdRate > 0:
		// More 429s than answers: what gets through is about what the upstream
		// allows, and the rate in force is far above it (a burst the upstream let
		// through at first, say). Halve at least, so the storm ends in a few cuts.
		l.aimdRate = math.Max(1, math.Min(l.aimdRate/2, achieved))
	case l.aimdRate == 0 || achieved*aimdDecrease < l.aimdRate:
		l.aimdRate = math.Max(1, achieved*aimdDecrease)
	default:
		l.aimdRate = math.Max(1, l.aimdRate*aimdDecrease)
	}
	l.aimdAt = now
	rate := l.aimdRate
	if l.maxRPM > 0 {
		rate = math.Min(rate, l.maxRPM/60)
	}
	l.req.set(now, rate, math.Max(1, rate/10))
}

// growAIMD raises the AIMD rate for every second without a 429.
func (l *limiter) growAIMD(now time.Time) {
	if l.aimdRate == 0 || now.Sub(l.aimdAt) < time.Second || now.Sub(l.lastThrottle) < time.Second {
		return
	}
	secs := now.Sub(l.aimdAt).Seconds()
	l.aimdRate += math.Max(1, l.aimdRate*aimdIncrease) * secs
	l.aimdAt = now
	rate := l.aimdRate
	if l.maxRPM > 0 {
		rate = math.Min(rate, l.maxRPM/60)
	}
	l.req.set(now, rate, math.Max(1, rate/10))
}

// meanOutput is the mean completion tokens seen on requests without an output bound,
// or def before any was seen.
func (l *limiter) meanOutput(def int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.outSeen == 0 {
		return def
	}
	return int64(l.avgOut + 0.5)
}

// Limits is a snapshot of the limits in force, for progress displays.
type Limits struct {
	// RPM and TPM are the request and token rates in force per minute (0: unlimited).
	RPM, TPM float64
	// Learned reports whether they come from the upstream's headers.
	Learned bool
	// Window is how many requests may be in flight.
	Window int
	// PausedUntil is set while the dispatcher waits out a 429.
	PausedUntil time.Time
}

func (l *limiter) Limits() Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Limits{
		RPM: l.req.rate * 60, TPM: l.tok.rate * 60,
		Learned: l.learnedReq || l.learnedTok, Window: max(1, int(l.window)),
		PausedUntil: l.pausedUntil,
	}
}

// rateMeter counts events per second over the last few seconds.
type rateMeter struct {
	secs   [2]int64 // counts for the current second and the one before it
	second int64    // unix second of secs[0]
	start  time.Time
}

func (m *rateMeter) shift(now time.Time) {
	s := now.Unix()
	if d := s - m.second; d > 0 {
		if d >= int64(len(m.secs)) {
			m.secs = [2]int64{}
		} else {
			copy(m.secs[d:], m.secs[:int64(len(m.secs))-d])
			clear(m.secs[:d])
		}
		m.second = s
	}
}

func (m *rateMeter) add(now time.Time) {
	if m.start.IsZero() {
		m.start = now
	}
	m.shift(now)
	m.secs[0]++
}

// rate is events per second over the last one to two seconds (less at the start): short,
// so that after a burst the rate an upstream really lets through shows at once.
func (m *rateMeter) rate(now time.Time) float64 {
	if m.start.IsZero() {
		return 0
	}
	m.shift(now)
	window := 1 + float64(now.Nanosecond())/1e9
	if since := now.Sub(m.start).Seconds(); since < window {
		window = since
	}
	if window <= 0 {
		return 0
	}
	return float64(m.secs[0]+m.secs[1]) / window
}
