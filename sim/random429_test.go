package sim

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestRandom429: an overloaded relay refuses its share of requests whatever the load,
// without retry-after or limit headers, and without spending the hidden limits. The share
// is the same when requests are spread out as when they come in a burst.
func TestRandom429(t *testing.T) {
	const n = 2000
	share := func(gap time.Duration) (throttled int) {
		c := newClock()
		s := New(Config{Seed: 3, Random429: 0.05, RPM: 1_000_000})
		s.now = c.now
		for i := range n {
			a := post(t, s, "/v1/chat/completions", chatBody(fmt.Sprintf("ask r%05d", i), ""))
			c.advance(gap)
			if a.status == http.StatusOK {
				continue
			}
			throttled++
			checkError(t, a, http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded")
			for _, h := range []string{"retry-after", "retry-after-ms", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests"} {
				if v := a.header.Get(h); v != "" {
					t.Fatalf("random 429 carries %s: %s", h, v)
				}
			}
		}
		if st := s.Stats(); st.Throttled != int64(throttled) || st.OK != int64(n-throttled) {
			t.Errorf("stats %+v, %d throttled", st, throttled)
		}
		return throttled
	}
	burst, spread := share(0), share(time.Second)
	if burst != spread {
		t.Errorf("%d random 429s in a burst, %d spread over %d s: the share must not depend on the load", burst, spread, n)
	}
	if burst < n*5/100*7/10 || burst > n*5/100*13/10 {
		t.Errorf("%d random 429s in %d requests, want about 5%%", burst, n)
	}
	if got := New(Config{Random429: -1}).cfg.Random429; got != 0 {
		t.Errorf("Random429 -1 clamped to %v", got)
	}
}
