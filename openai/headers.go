package openai

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
)

// Bounds on durations read from headers.
const (
	// MaxRetryAfter caps the wait an upstream can ask for with retry-after-ms or
	// retry-after: past it, sluice would rather try again than sit idle.
	MaxRetryAfter = 10 * time.Minute
	// MaxReset caps a rate-limit reset time (a daily limit resets within a day).
	MaxReset = 24 * time.Hour
)

// Canonical header keys, looked up without canonicalising on every answer.
const (
	hdrLimitRequests     = "X-Ratelimit-Limit-Requests"
	hdrRemainingRequests = "X-Ratelimit-Remaining-Requests"
	hdrResetRequests     = "X-Ratelimit-Reset-Requests"
	hdrLimitTokens       = "X-Ratelimit-Limit-Tokens"
	hdrRemainingTokens   = "X-Ratelimit-Remaining-Tokens"
	hdrResetTokens       = "X-Ratelimit-Reset-Tokens"
	hdrRetryAfterMs      = "Retry-After-Ms"
	hdrRetryAfter        = "Retry-After"
)

// requestIDHeaders are the headers that may carry an upstream's request id, best first.
var requestIDHeaders = [...]string{
	"X-Request-Id",
	"Request-Id",
	"X-Amzn-Requestid",
	"X-Amz-Request-Id",
	"Apim-Request-Id", // Azure API Management
	"X-Trace-Id",
	"Cf-Ray", // Cloudflare: not the upstream's id, but it finds the request in a support case
}

// requestID returns the answer's request id, "" when it has none.
func requestID(h http.Header) string {
	for _, k := range requestIDHeaders {
		if v := strings.TrimSpace(header(h, k)); v != "" {
			return clip(oneLine(v), maxField)
		}
	}
	return ""
}

// parseRateLimits reads the x-ratelimit-* headers. HasRequests (HasTokens) is set only
// when the limit header parsed. A remaining count that is missing or unparsable is
// reported as the full limit, so that it never reads as an exhausted budget; a reset
// that is missing or unparsable is 0. now is the clock for resets given as a time.
func parseRateLimits(h http.Header, now time.Time) sluice.RateLimits {
	var rl sluice.RateLimits
	rl.LimitRequests, rl.HasRequests = parseCount(header(h, hdrLimitRequests))
	if rl.HasRequests {
		rl.RemainingRequests = remaining(header(h, hdrRemainingRequests), rl.LimitRequests)
		rl.ResetRequests, _ = parseReset(header(h, hdrResetRequests), now)
	}
	rl.LimitTokens, rl.HasTokens = parseCount(header(h, hdrLimitTokens))
	if rl.HasTokens {
		rl.RemainingTokens = remaining(header(h, hdrRemainingTokens), rl.LimitTokens)
		rl.ResetTokens, _ = parseReset(header(h, hdrResetTokens), now)
	}
	return rl
}

func remaining(s string, limit int64) int64 {
	if n, ok := parseCount(s); ok {
		return n
	}
	return limit
}

// parseCount reads a non-negative count: "500", "500.0", " 500 ". Negative values are 0.
func parseCount(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return max(n, 0), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return int64(math.Max(0, math.Min(f, 1<<62))), true
}

// Thresholds that tell a plain number of seconds from a Unix time.
const (
	unixSeconds = 1e9  // 2001-09-09 in Unix seconds; more than 31 years as a duration
	unixMillis  = 1e12 // the same instant in Unix milliseconds
)

// parseReset reads a rate-limit reset header, in any of the forms providers use:
//
//   - a Go-like duration: "1s", "6m0s", "20ms", "1m30.5s", "0.5s", "2h", "1d2h";
//   - plain seconds: "12", "12.5";
//   - a Unix time in seconds or milliseconds (a number past 1e9, or 1e12);
//   - an HTTP date ("Mon, 02 Jan 2006 15:04:05 GMT") or an RFC 3339 time.
//
// Times are made relative to now; the result is within [0, MaxReset]. ok is false when s
// is empty or in no known form.
func parseReset(s string, now time.Time) (d time.Duration, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return 0, false
	}
	if numeric(s) { // checked first: a ParseFloat error is allocated, on every answer
		f, err := strconv.ParseFloat(s, 64)
		switch {
		case err != nil:
			return 0, false
		case f >= unixMillis:
			return untilTime(time.UnixMilli(int64(math.Min(f, math.MaxInt64/2))), now, MaxReset), true
		case f >= unixSeconds:
			return untilTime(time.Unix(int64(f), 0), now, MaxReset), true
		}
		return scaled(f, time.Second, MaxReset), true
	}
	if d, ok := parseDuration(s); ok {
		return min(d, MaxReset), true
	}
	if t, ok := parseTime(s); ok {
		return untilTime(t, now, MaxReset), true
	}
	return 0, false
}

// numeric reports whether s has only the characters of a decimal number.
func numeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E' {
			return false
		}
	}
	return true
}

// parseRetryAfter reads how long an answer asks to wait: retry-after-ms (milliseconds,
// possibly fractional) when it parses, else retry-after (seconds, possibly fractional,
// or an HTTP date, relative to now). The result is within [0, MaxRetryAfter]; 0 means
// the answer did not say (or said something negative or unreadable).
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(header(h, hdrRetryAfterMs)); v != "" && len(v) <= 64 {
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return scaled(f, time.Millisecond, MaxRetryAfter)
		}
	}
	v := strings.TrimSpace(header(h, hdrRetryAfter))
	if v == "" || len(v) > 64 {
		return 0
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0
		}
		return scaled(f, time.Second, MaxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return untilTime(t, now, MaxRetryAfter)
	}
	return 0
}

// scaled converts f units to a duration, rounded to the nanosecond, within [0, ceiling].
func scaled(f float64, unit, ceiling time.Duration) time.Duration {
	v := f * float64(unit)
	switch {
	case !(v > 0): // also NaN
		return 0
	case v >= float64(ceiling):
		return ceiling
	}
	return time.Duration(math.Round(v))
}

// untilTime is the time from now to t, within [0, ceiling].
func untilTime(t, now time.Time, ceiling time.Duration) time.Duration {
	return min(max(t.Sub(now), 0), ceiling)
}

// parseTime reads an HTTP date (RFC 1123 and its older forms) or an RFC 3339 time.
func parseTime(s string) (time.Time, bool) {
	if t, err := http.ParseTime(s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// durationUnits are the units parseDuration knows, longest first where one is a prefix
// of another.
var durationUnits = [...]struct {
	name string
	unit time.Duration
}{
	{"ns", time.Nanosecond},
	{"us", time.Microsecond},
	{"µs", time.Microsecond},
	{"μs", time.Microsecond},
	{"ms", time.Millisecond},
	{"s", time.Second},
	{"m", time.Minute},
	{"h", time.Hour},
	{"d", 24 * time.Hour},
}

// parseDuration reads a sequence of decimal numbers, each with a unit, such as "1m30.5s"
// or "1d2h": time.ParseDuration's syntax without a sign, plus days. Unlike
// time.ParseDuration it saturates instead of failing on overflow.
func parseDuration(s string) (time.Duration, bool) {
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, false
		}
		f, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, false
		}
		s = s[i:]
		matched := false
		for _, u := range durationUnits {
			if strings.HasPrefix(s, u.name) && (u.name != "m" || !strings.HasPrefix(s, "ms")) {
				total += f * float64(u.unit)
				s = s[len(u.name):]
				matched = true
				break
			}
		}
		if !matched {
			return 0, false
		}
	}
	if total >= math.MaxInt64 {
		return math.MaxInt64, true
	}
	return time.Duration(math.Round(total)), true
}
