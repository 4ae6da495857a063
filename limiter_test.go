package sluice

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestBucket(t *testing.T) {
	tests := []struct {
		name  string
		run   func(b *bucket) time.Duration
		want  time.Duration
		after float64 // expected balance after run
	}{
		{"unlimited never waits", func(b *bucket) time.Duration { *b = bucket{}; return b.take(t0, 1e9) }, 0, 0},
		{"take within burst", func(b *bucket) time.Duration { return b.take(t0, 5) }, 0, 5},
		{"debt waits for repayment", func(b *bucket) time.Duration { return b.take(t0, 15) }, 500 * time.Millisecond, -5},
		{"request larger than burst is let through as debt", func(b *bucket) time.Duration { return b.take(t0, 30) }, 2 * time.Second, -20},
		{"refill over time capped at burst", func(b *bucket) time.Duration {
			b.take(t0, 10)
			return b.take(t0.Add(10*time.Second), 0)
		}, 0, 10},
		{"give settles an over-estimate", func(b *bucket) time.Duration {
			b.take(t0, 10)
			b.give(t0, 4)
			return b.take(t0, 0)
		}, 0, 4},
		{"ceil lowers the balance", func(b *bucket) time.Duration {
			b.ceil(t0, 2)
			return b.take(t0, 3)
		}, 100 * time.Millisecond, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bucket
			b.set(t0, 10, 10) // 10 tokens a second, burst 10, starts full
			got := tt.run(&b)
			if got != tt.want {
				t.Errorf("wait = %v, want %v", got, tt.want)
			}
			if math.Abs(b.tokens-tt.after) > 1e-9 {
				t.Errorf("balance = %v, want %v", b.tokens, tt.after)
			}
		})
	}
}

func TestLimiterUserCaps(t *testing.T) {
	l := newLimiter(t0, 100, 600, 6000) // 10 req/s, 100 tok/s
	if w := l.Window(); w != 100 {
		t.Fatalf("window with user limits = %d, want the full concurrency 100", w)
	}
	var waits []time.Duration
	for range 12 {
		w, _ := l.Reserve(t0, Estimate{PromptTokens: 1, MaxOutputTokens: 1})
		waits = append(waits, w)
	}
	// A burst of 10 passes at once; the 11th waits 0.1 s, the 12th 0.2 s.
	if waits[9] != 0 || waits[10] != 100*time.Millisecond || waits[11] != 200*time.Millisecond {
		t.Errorf("waits = %v", waits)
	}
	if lim := l.Limits(); lim.Waits != 2 || lim.Waited != 300*time.Millisecond {
		t.Errorf("Limits() counts %d waits of %v in all, want 2 of 300ms", lim.Waits, lim.Waited)
	}
	// Tokens bind: 100 tokens a second, a 150-token request after the burst waits.
	l = newLimiter(t0, 100, 0, 6000)
	w, reserved := l.Reserve(t0, Estimate{PromptTokens: 100, MaxOutputTokens: 150})
	if reserved != 250 || w != 1500*time.Millisecond {
		t.Errorf("reserve 250 tokens: wait %v reserved %d, want 1.5s 250", w, reserved)
	}
	// The prompt was 40 tokens, not 100: settling gives 60 back. The unused output bound
	// stays spent, as providers count max_tokens at admission.
	l.Settle(t0, reserved, Estimate{PromptTokens: 100, MaxOutputTokens: 150}, Usage{PromptTokens: 40, CompletionTokens: 10})
	if w, _ := l.Reserve(t0, Estimate{PromptTokens: 10}); w != time.Second {
		t.Errorf("after settling, a 10-token request waits %v, want 1s", w)
	}
	// A request never sent is refunded in full.
	l = newLimiter(t0, 100, 0, 6000)
	_, reserved = l.Reserve(t0, Estimate{PromptTokens: 100, MaxOutputTokens: 150})
	l.Refund(t0, reserved)
	if w, _ := l.Reserve(t0, Estimate{PromptTokens: 100}); w != 0 {
		t.Errorf("after a refund, a 100-token request waits %v, want 0", w)
	}
}

func TestLimiterLearnsFromHeaders(t *testing.T) {
	l := newLimiter(t0, 256, 0, 0)
	if w := l.Window(); w != slowStartWindow {
		t.Fatalf("window before limits are known = %d, want slow start %d", w, slowStartWindow)
	}
	l.Observe(t0, RateLimits{HasRequests: true, LimitRequests: 6000, RemainingRequests: 3,
		HasTokens: true, LimitTokens: 60000, RemainingTokens: 60000})
	if w := l.Window(); w != 256 {
		t.Errorf("window once limits are known = %d, want 256", w)
	}
	lim := l.Limits()
	if !lim.Learned || math.Abs(lim.RPM-6000*learnedSafety) > 1e-6 || math.Abs(lim.TPM-60000*learnedSafety) > 1e-6 {
		t.Errorf("limits = %+v, want learned 6000 RPM and 60000 TPM less the safety margin", lim)
	}
	// Only 3 requests remain: the 4th at once has to wait for the refill.
	var waits []time.Duration
	for range 4 {
		w, _ := l.Reserve(t0, Estimate{})
		waits = append(waits, w)
	}
	if waits[2] != 0 || waits[3] <= 0 {
		t.Errorf("waits with 3 remaining = %v, want the 4th to wait", waits)
	}
	// A user cap below the learned limit wins.
	l = newLimiter(t0, 256, 600, 0)
	l.Observe(t0, RateLimits{HasRequests: true, LimitRequests: 6000, RemainingRequests: 6000})
	if got := l.Limits().RPM; got != 600 {
		t.Errorf("RPM with user cap 600 and learned 6000 = %v, want 600", got)
	}
}

func TestLimiterThrottlePauses(t *testing.T) {
	// With learned limits, a retry-after pauses everyone.
	l := newLimiter(t0, 64, 0, 0)
	l.Observe(t0, RateLimits{HasRequests: true, LimitRequests: 600_000, RemainingRequests: 10_000})
	l.Throttled(t0, t0, 3*time.Second)
	if w, _ := l.Reserve(t0.Add(time.Second), Estimate{}); w != 2*time.Second {
		t.Errorf("wait 1s into a 3s retry-after = %v, want 2s", w)
	}
	// A retry-after pauses for at most throttleMax.
	l.Throttled(t0, t0, time.Hour)
	if got := l.Limits().PausedUntil.Sub(t0); got != throttleMax {
		t.Errorf("pause for a 1h retry-after = %v, want %v", got, throttleMax)
	}
	// 429s without retry-after and without limit headers, however many in a row, never
	// pause the dispatcher for more than stormPause (on main, 8 in a row paused it for a
	// minute: the run sent nothing for 54 s).
	l = newLimiter(t0, 64, 0, 0)
	for i := range 200 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		l.Throttled(now, now, 0)
		if p := l.Limits().PausedUntil.Sub(now); p > stormPause {
			t.Fatalf("paused for %v after %d 429s in a row, want at most %v", p, i+1, stormPause)
		}
	}
}

// Slow start quadruples the window every round trip: at concurrency 256 it is fully
// open after 3 round trips (doubling took 5: a second lost at 200 ms of latency).
func TestSlowStartOpensInTwoRoundTrips(t *testing.T) {
	l := newLimiter(t0, 256, 0, 0)
	var windows []int
	for range 2 {
		w := l.Window()
		windows = append(windows, w)
		for range w { // one round trip: every request in flight is answered
			l.Answered(t0, t0)
		}
	}
	// The first window stays 8 (a rejected key costs 8 requests at most), the second
	// is 4 times that, and the third is open.
	if w := l.Window(); w != 256 || windows[0] != slowStartWindow || windows[1] != slowStartFast {
		t.Errorf("windows over 2 round trips: %v, then %d; want 8, 32, then 256", windows, w)
	}
}

func TestLimiterAIMDWithoutHeaders(t *testing.T) {
	l := newLimiter(t0, 256, 0, 0)
	// Slow start: every answer widens the window by slowStartGrowth up to slowStartFast,
	// by slowStartFastGrowth from there.
	for range 20 {
		l.Answered(t0, t0)
	}
	if w, want := l.Window(), slowStartFast+12*slowStartFastGrowth; w != want {
		t.Errorf("window after 20 answers = %d, want %d", w, want)
	}
	// 100 answers a second for 4 seconds, then a window of 429s: the rate is cut under
	// what was getting through.
	now := t0
	for i := range 400 {
		now = t0.Add(time.Duration(i) * 10 * time.Millisecond)
		l.Answered(now, now)
	}
	n := 0
	for l.Limits().RPM == 0 && n < 60 {
		l.Throttled(now, now, 0)
		n++
	}
	rpm := l.Limits().RPM
	if rpm < 60*100*0.4 || rpm > 60*100*aimdDecrease*1.1 {
		t.Errorf("RPM after %d 429s in a row at ~100 req/s = %v, want under %v", n, rpm, 60*100*aimdDecrease)
	}
	// Answers to requests sent before the cut do not judge it.
	for range 50 {
		l.Throttled(now, now.Add(-time.Millisecond), 0)
	}
	if got := l.Limits().RPM; got != rpm {
		t.Errorf("429s to requests sent before the cut cut the rate again: %v → %v", rpm, got)
	}
	// The next window, at the lower rate, has no 429s: the cut stands, and the rate
	// grows back while no 429 comes.
	for i := range 100 {
		now = now.Add(10 * time.Millisecond)
		l.Answered(now, now.Add(-time.Duration(i)))
	}
	if got := l.Limits().RPM; got != rpm {
		t.Errorf("RPM after the verifying window = %v, want the cut %v to stand", got, rpm)
	}
	l.Reserve(now.Add(10*time.Second), Estimate{})
	if got := l.Limits().RPM; got <= rpm*1.1 {
		t.Errorf("RPM after 10 s without a 429 = %v, want it to grow from %v", got, rpm)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		rnd        float64
		want       time.Duration
	}{
		{"first retry, top of the draw", 1, 0, 0.999999, time.Duration(0.999999 * float64(time.Second))},
		{"third retry grows to 4s", 3, 0, 0.5, 2 * time.Second},
		{"full jitter can be zero", 3, 0, 0, 0},
		{"capped at max", 20, 0, 0.5, 30 * time.Second},
		{"huge attempt does not overflow", 200, 0, 0.5, 30 * time.Second},
		{"retry-after wins, jitter added", 1, 5 * time.Second, 0.5, 5*time.Second + 250*time.Millisecond},
		{"a tiny retry-after is a floor, not the wait", 4, 7 * time.Millisecond, 0.5, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Backoff(tt.attempt, tt.retryAfter, time.Second, time.Minute, tt.rnd)
			if got != tt.want {
				t.Errorf("backoff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		name string
		err  *UpstreamError
		want time.Duration
	}{
		{"a 5xx waits the full backoff", &UpstreamError{StatusCode: 503}, 2 * time.Second},
		{"a 429 without retry-after waits a tenth: the limiter paces the run", &UpstreamError{StatusCode: 429}, 200 * time.Millisecond},
		{"a 429 with retry-after waits for it", &UpstreamError{StatusCode: 429, RetryAfter: 3 * time.Second}, 3*time.Second + 150*time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryDelay(3, tt.err, time.Second, time.Minute, 0.5); got != tt.want {
				t.Errorf("retryDelay = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUpstreamErrorRetryable(t *testing.T) {
	tests := []struct {
		status int
		want   bool
	}{
		{0, true}, {200, true}, {400, false}, {401, false}, {403, false}, {404, false},
		{408, true}, {409, true}, {422, false}, {429, true}, {500, true}, {502, true}, {503, true},
	}
	for _, tt := range tests {
		if got := (&UpstreamError{StatusCode: tt.status}).Retryable(); got != tt.want {
			t.Errorf("status %d: Retryable = %v, want %v", tt.status, got, tt.want)
		}
	}
}
