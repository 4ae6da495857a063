package gateway

import (
	"crypto/sha256"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// clientKey is a configured key and its own rate limits.
type clientKey struct {
	Key
	mu       sync.Mutex
	req, tok minuteBucket
}

func newClientKey(k Key, now time.Time) *clientKey {
	c := &clientKey{Key: k}
	c.req.init(k.RPM, now)
	c.tok.init(k.TPM, now)
	return c
}

// minuteBucket is a token bucket holding a minute's worth that refills continuously, as
// providers count RPM and TPM. The zero value (and a rate of 0) is unlimited.
type minuteBucket struct {
	perSec, burst, level float64
	last                 time.Time
}

func (b *minuteBucket) init(perMinute float64, now time.Time) {
	if perMinute <= 0 {
		return
	}
	b.perSec, b.burst, b.level, b.last = perMinute/60, math.Max(perMinute, 1), math.Max(perMinute, 1), now
}

func (b *minuteBucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.level = math.Min(b.burst, b.level+d.Seconds()*b.perSec)
		b.last = now
	}
}

// lack is how long until n is available (0: it is now).
func (b *minuteBucket) lack(now time.Time, n float64) time.Duration {
	if b.perSec == 0 {
		return 0
	}
	b.refill(now)
	n = math.Min(n, b.burst) // a request larger than a minute's worth waits for a full bucket
	if b.level >= n {
		return 0
	}
	return time.Duration((n - b.level) / b.perSec * float64(time.Second))
}

func (b *minuteBucket) take(n float64) {
	if b.perSec != 0 {
		b.level -= n
	}
}

// admit takes one request of tokens from the key's limits, or says how long to wait. A
// request of no tokens (a cache hit) is held to the key's RPM only.
func (c *clientKey) admit(now time.Time, tokens int64) (wait time.Duration, ok bool) {
	if c.RPM == 0 && c.TPM == 0 {
		return 0, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	wait = c.req.lack(now, 1)
	if tokens > 0 {
		wait = max(wait, c.tok.lack(now, float64(tokens)))
	}
	if wait > 0 {
		return wait, false
	}
	c.req.take(1)
	c.tok.take(float64(tokens))
	return 0, true
}

// authenticate returns the client key of the request's bearer key.
func (g *Gateway) authenticate(r *http.Request) (*clientKey, bool) {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	k, ok := g.keys[sha256.Sum256([]byte(strings.TrimSpace(key)))]
	return k, ok
}
