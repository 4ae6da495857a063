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
	slowStartWindow = 8 // requests in flight before the upstream's limits are known
	// slowStartGrowth widens the window by this much per answer in slow start, so that it
	// quadruples every round trip up to slowStartFast, and slowStartFastGrowth from there,
	// so that it grows 8-fold: from 8, a window of 256 is open after 2 round trips (3 when
	// it only quadrupled, 5 when it doubled: a second at 200 ms, 3% of a 30 s run). The
	// first window stays 8, so a rejected key still costs at most 8 requests; a hidden
	// limit low enough for a few dozen requests in flight to overshoot it is met by 32, as
	// before, with as few 429s; past it, each round trip of slow start costs a whole
	// window's worth of time.
	slowStartGrowth     = 3
	slowStartFast       = 32
	slowStartFastGrowth = 7
	minWindow           = 4    // a cut halves the window down to this: the rate, not the window, paces
	aimdDecrease        = 0.85 // rate kept after a cut, of what was getting through
	aimdIncrease        = 0.05 // rate growth per second outside a cut's verification (fraction of the rate)
	minRate             = 1.0  // requests per second a cut never goes below
	minGrowth           = 0.2  // requests per second the rate grows by every second at least
	cutFloor            = 0.125
	outageShare         = 0.02 // of the rate sent getting through, at most: an outage, not a limit
	stormShare          = 0.5  // of the requests the noise floor lets through, a 429 share from which a window is a storm
	stormPause          = time.Second
	throttleMax         = time.Minute // the longest pause a retry-after can impose
	growStep            = 250 * time.Millisecond
	// Near a limit an episode found (limiter.found), from underFound to nearFound of
	// it, the AIMD rate grows by foundIncrease of itself a second instead of aimdIncrease,
	// unless the noise floor is foundFloor or more.
	foundIncrease = 0.01
	underFound    = 0.95
	nearFound     = 1.1
	foundFloor    = 0.05
)

// limiter decides when the dispatcher may send the next request. It combines the user's
// RPM and TPM caps, the limits learned from the upstream's x-ratelimit headers, a pause
// of the whole dispatcher when the upstream asks for one (retry-after), and, for an
// upstream that sends no limit headers, a slow start of the concurrency window and a
// request rate cut multiplicatively when the share of 429s rises above its noise floor,
// and grown additively otherwise (see pace). Safe for concurrent use; time is passed in so
// tests are exact.
type limiter struct {
	mu sync.Mutex

	maxRPM, maxTPM float64 // user caps; 0 = none
	maxWindow      int     // the concurrency cap

	req, tok bucket

	// learned reports that the upstream's limit headers have been seen.
	learnedReq, learnedTok bool
	// window is how many requests may be in flight; it grows from slowStartWindow to
	// maxWindow, quadrupling every round trip until a cut, by one a round trip after.
	window float64
	// aimdRate is the request rate found for an upstream without limit headers (0: none
	// in force); aimdAt is when it last moved.
	aimdRate float64
	aimdAt   time.Time
	// cut reports that a cut of the rate has stood: slow start is over. recoverTo is
	// the rate up to which the AIMD rate doubles every second after a cut.
	cut       bool
	recoverTo float64
	// found is the limit an episode found (0: none yet), the rate that stood over
	// aimdDecrease: the AIMD rate grows slowly near it, where the next 429s are. It is
	// not used under a noise floor of foundFloor or more, whose episodes tell a limit
	// less well (a window picked for being high among a relay's random 429s, and cut,
	// ends as a limit when the next is back at the floor).
	found float64

	pausedUntil time.Time
	pace        pace

	// meter measures answered requests per second (429s excluded).
	meter rateMeter
	// workers is how many live workers share the job's limits (share.go); 0 means 1.
	workers float64
	// avgOut is the mean completion tokens seen, reserved for requests with no max_tokens.
	avgOut  float64
	outSeen int64
	// waits counts the reservations that had to wait, waited adds up their waits.
	waits  int64
	waited time.Duration
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
	wait = max(l.pausedUntil.Sub(now), l.req.take(now, l.reqWeight()), l.tok.take(now, float64(reserved)*l.tokWeight()), 0)
	if wait > 0 {
		l.waits, l.waited = l.waits+1, l.waited+wait
	}
	l.pace.sent(now.Add(wait))
	return wait, reserved
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
	l.tok.give(now, float64(reserved-cost)*l.tokWeight())
}

// Refund returns a reservation whose request was never sent.
func (l *limiter) Refund(now time.Time, reserved int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.req.give(now, l.reqWeight())
	l.tok.give(now, float64(reserved)*l.tokWeight())
}

// Answered records an answer that was not a 429 to a request sent at sent: the window
// grows while the upstream's limits are unknown, the rate meter counts it and so does the
// judgement of 429s.
func (l *limiter) Answered(now, sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.meter.add(now)
	switch {
	case l.window >= float64(l.maxWindow):
	case !l.cut && l.window < slowStartFast:
		l.window += slowStartGrowth // slow start: quadruples every round trip
	case !l.cut:
		l.window += slowStartFastGrowth // then grows 8-fold every round trip
	default:
		l.window += 1 / l.window // congestion avoidance: one more every round trip
	}
	l.window = math.Min(l.window, float64(l.maxWindow))
	if !l.learnedReq && !l.learnedTok {
		l.judge(now, sent, false)
	}
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

// Throttled records a 429 to a request sent at sent. With learned limits, the learned
// bucket was too generous: it is emptied, and the dispatcher pauses for the retry-after
// the upstream asked for. Without, the 429 goes to the judgement of 429s (see pace),
// which cuts the rate only for a share of 429s above the noise floor; a retry-after then
// pauses the dispatcher only while a cut is being verified, since a retry-after from a
// relay that refuses requests at random says nothing about the run's pace. A 429 without
// retry-after never pauses the dispatcher for more than stormPause: the request's own
// backoff spaces its retry.
func (l *limiter) Throttled(now, sent time.Time, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.learnedReq || l.learnedTok {
		l.req.ceil(now, 0)
		l.pause(now, retryAfter)
		return
	}
	l.judge(now, sent, true)
	if l.pace.verifying {
		l.pause(now, retryAfter)
	}
}

// pause stops the dispatcher for d (at most throttleMax) from now.
func (l *limiter) pause(now time.Time, d time.Duration) {
	if d <= 0 {
		return
	}
	if until := now.Add(min(d, throttleMax)); until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
}

// judge counts an answer (a 429 when throttled) in the pace window and acts on the
// window's verdict.
func (l *limiter) judge(now, sent time.Time, throttled bool) {
	before := saved{rate: l.aimdRate, window: l.window, cut: l.cut}
	episode := l.pace.verifying
	l.pace.slowStart = !l.cut && l.window < float64(l.maxWindow)
	v, j := l.pace.add(now, sent, throttled)
	switch v {
	case verdictCut:
		if !episode {
			l.pace.saved = before
		}
		l.cutRate(now, j)
	case verdictNoise:
		// The share did not fall with the rate: restore what the episode cut.
		l.aimdRate, l.window, l.cut = l.pace.saved.rate, l.pace.saved.window, l.pace.saved.cut
		l.aimdAt = now
		l.applyRate(now)
	case verdictLimit:
		l.aimdAt = now
		if b := l.pace.before; b.ok > 0 && b.ok >= outageShare*b.sent {
			// A limit, not an outage: the rate that brought the share back is under it,
			// and recoverTo, measured when the episode began, may be far above (an
			// upstream's minute of allowance running out at 13 times the limit).
			l.recoverTo = math.Min(l.recoverTo, l.aimdRate)
			l.found = l.aimdRate / aimdDecrease
		}
	}
}

// cutRate cuts the request rate for a window that measured j: to a little under what got
// through, and in a storm to half the rate sent at most. A cut keeps at least cutFloor of
// the rate, so that one window, an outage say, cannot collapse it.
// The window halves too, and a storm pauses the dispatcher for stormPause so that the
// attempts in flight come back first. The first cut of an episode remembers half the rate
// it cut from: after the episode, the rate grows back to there quickly.
func (l *limiter) cutRate(now time.Time, j judged) {
	achieved, current := l.meter.rate(now), j.sent
	if j.ok > 0 {
		achieved = math.Min(achieved, j.ok)
	}
	if j.hasThrough {
		achieved = math.Min(achieved, j.through)
	}
	if current == 0 { // too few sends to measure
		current = achieved / math.Max(1-j.share, 0.01)
	}
	if l.aimdRate > 0 {
		current = math.Min(current, l.aimdRate)
	}
	if l.pace.cuts == 1 {
		l.recoverTo = current / 2 // after an outage, back there fast
		if achieved >= max(minRate, current*outageShare) {
			l.recoverTo = math.Min(l.recoverTo, achieved*aimdDecrease) // a limit: never above it
		}
	}
	if l.pace.floor >= paceMildShare {
		// A relay's random 429s, the noise floor, are not the limit's: what got through
		// is that share under the rate that reaches the limit.
		achieved /= 1 - l.pace.floor
	}
	rate := math.Min(current, achieved) * aimdDecrease
	switch f := l.pace.floor; {
	case l.pace.flatCut:
		// The share did not fall with the last cut and may be noise: halve the rate at
		// most, so that the windows that tell noise from a limit do not shrink faster
		// than they grow.
		rate = math.Max(rate, current/2)
	case j.share-f >= stormShare*(1-f):
		l.pause(now, stormPause)
		rate = math.Min(current/2, rate)
	}
	l.aimdRate = math.Max(minRate, math.Max(rate, current*cutFloor))
	l.aimdAt = now
	l.cut = true
	l.window = math.Max(minWindow, l.window/2)
	l.applyRate(now)
	l.req.ceil(now, 0)
	l.pace.cur.since = maxTime(now, l.pausedUntil) // the window after the cut starts when sending does
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// applyRate puts the AIMD rate (or, without one, the user's cap) in force.
func (l *limiter) applyRate(now time.Time) {
	rate := l.aimdRate
	if l.maxRPM > 0 && (rate == 0 || rate > l.maxRPM/60) {
		if rate == 0 {
			l.req.set(now, l.maxRPM/60, l.maxRPM/60)
			return
		}
		rate = l.maxRPM / 60
	}
	if rate == 0 {
		l.req = bucket{}
		return
	}
	l.req.set(now, rate, math.Max(1, rate/10))
}

// growAIMD raises the AIMD rate for the time since it last moved, except while a cut is
// being verified (for 2 × paceMaxSpan at most: a verdict needs answers): it doubles every second up to recoverTo, then grows by aimdIncrease of
// itself (at least minGrowth) every second, or by foundIncrease from underFound to
// nearFound of a limit an episode found: past the limit, a hidden bucket that the cut let
// refill hides it until it runs out, and a rate that grew 5% a second meanwhile meets it
// with a large excess.
func (l *limiter) growAIMD(now time.Time) {
	if l.aimdRate == 0 || now.Sub(l.aimdAt) < growStep || l.pace.verifying && now.Sub(l.aimdAt) < 2*paceMaxSpan {
		return
	}
	secs := now.Sub(l.aimdAt).Seconds()
	if l.aimdRate < l.recoverTo {
		l.aimdRate = math.Min(l.recoverTo, l.aimdRate*math.Exp2(secs))
	} else {
		inc := aimdIncrease
		if l.found > 0 && l.aimdRate >= underFound*l.found && l.aimdRate < nearFound*l.found && l.pace.floor < foundFloor {
			inc = foundIncrease
		}
		l.aimdRate += math.Max(minGrowth, l.aimdRate*inc) * secs
	}
	l.aimdAt = now
	l.applyRate(now)
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
	// Waits counts the requests the limits held back before sending, and Waited adds up
	// how long they were held, since the Engine was made.
	Waits  int64
	Waited time.Duration
}

func (l *limiter) Limits() Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Limits{
		RPM: l.req.rate * 60, TPM: l.tok.rate * 60,
		Learned: l.learnedReq || l.learnedTok, Window: max(1, int(l.window)),
		PausedUntil: l.pausedUntil, Waits: l.waits, Waited: l.waited,
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
