package sluice

import (
	"testing"
	"time"
)

// freeSends counts the requests l lets through at one instant without a wait.
func freeSends(l *limiter, now time.Time) int {
	n := 0
	for ; n < 1000; n++ {
		if wait, _ := l.Reserve(now, Estimate{PromptTokens: 10, MaxOutputTokens: 10}); wait > 0 {
			break
		}
	}
	return n
}

// TestLimiterShare: one of n live workers takes 1/n of a limit given or learned (a burst
// of 10 requests a second at 600 RPM: 10 alone, 2 as one of 4); a rate the worker found
// by itself (no limit known) is its own share already.
func TestLimiterShare(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name    string
		limiter func() *limiter
		workers int
		want    int
	}{
		{"given rpm alone", func() *limiter { return newLimiter(now, 64, 600, 0) }, 1, 10},
		{"given rpm, one of 4", func() *limiter { return newLimiter(now, 64, 600, 0) }, 4, 2},
		{"learned rpm, one of 4", func() *limiter {
			l := newLimiter(now, 64, 0, 0)
			l.seed(now, 600, 0)
			return l
		}, 4, 2},
		{"given tpm, one of 2", func() *limiter { return newLimiter(now, 64, 0, 1200) }, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.limiter()
			l.setWorkers(tc.workers)
			if got := freeSends(l, now); got != tc.want {
				t.Errorf("%d requests sent at once, want %d", got, tc.want)
			}
		})
	}
}

// TestLimiterSeed: limits learned by other workers are in force at once, capped by the
// worker's own, and published back as they are held.
func TestLimiterSeed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(now, 64, 300, 0)
	l.seed(now, 600, 90_000)
	rpm, tpm, ok := l.learned()
	if !ok || rpm != 300 || tpm != 90_000 {
		t.Errorf("learned = %v, %v, %v; want 300 (the worker's own cap), 90000", rpm, tpm, ok)
	}
	if w := l.Window(); w != 64 {
		t.Errorf("window %d after seeding, want the full 64 (no slow start)", w)
	}
}
