package openai

import (
	"net/http"
	"time"

	"github.com/sluice-llm/sluice"
)

// ParseRateLimits reads an answer's x-ratelimit-* headers as the Client does, for
// proxies that relay answers themselves (the gateway): now is the clock for resets
// given as a time.
func ParseRateLimits(h http.Header, now time.Time) sluice.RateLimits { return parseRateLimits(h, now) }

// ParseRetryAfter reads retry-after-ms, then retry-after (seconds or an HTTP date), as
// the Client does; 0 when neither says, at most MaxRetryAfter.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration { return parseRetryAfter(h, now) }
