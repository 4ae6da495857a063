package openai

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

func TestParseReset(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"1s", time.Second, true},
		{"6m0s", 6 * time.Minute, true},
		{"20ms", 20 * time.Millisecond, true},
		{"1m30.5s", 90*time.Second + 500*time.Millisecond, true},
		{"0.5s", 500 * time.Millisecond, true},
		{"1h2m3s", time.Hour + 2*time.Minute + 3*time.Second, true},
		{"250us", 250 * time.Microsecond, true},
		{"250µs", 250 * time.Microsecond, true},
		{"7ns", 7, true},
		{"1d", 24 * time.Hour, true},
		{"2d", MaxReset, true},
		{"0s", 0, true},
		{" 12 ", 12 * time.Second, true},
		{"12", 12 * time.Second, true},
		{"12.5", 12500 * time.Millisecond, true},
		{"0", 0, true},
		{"-3", 0, true},
		{"86400000", MaxReset, true},                      // seconds, capped
		{"1741964996", 30 * time.Second, true},            // Unix seconds: fixedNow + 30s
		{"1741964996500", 30500 * time.Millisecond, true}, // Unix milliseconds
		{"1741964900", 0, true},                           // a Unix time in the past
		{"Fri, 14 Mar 2025 15:10:26 GMT", time.Minute, true},
		{"Friday, 14-Mar-25 15:10:26 GMT", time.Minute, true},
		{"2025-03-14T15:09:36Z", 10 * time.Second, true},
		{"2025-03-14T15:09:36.25+00:00", 10250 * time.Millisecond, true},
		{"", 0, false},
		{"   ", 0, false},
		{"soon", 0, false},
		{"1x", 0, false},
		{"s", 0, false},
		{"1.2.3s", 0, false},
		{"-1s", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"1e400", 0, false},
		{"99999999999999999999h", MaxReset, true},
	}
	for _, tt := range tests {
		got, ok := parseReset(tt.in, fixedNow)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseReset(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	date := func(d time.Duration) string { return fixedNow.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name      string
		ms, after string
		want      time.Duration
	}{
		{"none", "", "", 0},
		{"ms", "1500", "", 1500 * time.Millisecond},
		{"fractional ms", "20.5", "", 20500 * time.Microsecond},
		{"ms wins over seconds", "100", "9", 100 * time.Millisecond},
		{"garbage ms falls back to seconds", "later", "9", 9 * time.Second},
		{"negative ms", "-5", "", 0},
		{"seconds", "", "30", 30 * time.Second},
		{"fractional seconds", "", "0.25", 250 * time.Millisecond},
		{"seconds with spaces", "", " 2 ", 2 * time.Second},
		{"negative seconds", "", "-1", 0},
		{"zero", "", "0", 0},
		{"huge seconds capped", "", "86400", MaxRetryAfter},
		{"huge ms capped", "1e12", "", MaxRetryAfter},
		{"HTTP date", "", date(45 * time.Second), 45 * time.Second},
		{"HTTP date in the past", "", date(-time.Hour), 0},
		{"HTTP date far ahead", "", date(48 * time.Hour), MaxRetryAfter},
		{"garbage", "", "tomorrow", 0},
		{"NaN", "NaN", "NaN", 0},
		{"Inf", "+Inf", "Inf", 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.ms != "" {
			h.Set("retry-after-ms", tt.ms)
		}
		if tt.after != "" {
			h.Set("retry-after", tt.after)
		}
		if got := parseRetryAfter(h, fixedNow); got != tt.want {
			t.Errorf("%s: parseRetryAfter(ms %q, s %q) = %v, want %v", tt.name, tt.ms, tt.after, got, tt.want)
		}
	}
}

func TestParseRateLimits(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    sluice.RateLimits
	}{
		{"none", nil, sluice.RateLimits{}},
		{
			name: "OpenAI",
			headers: map[string]string{
				"x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999", "x-ratelimit-reset-requests": "6ms",
				"x-ratelimit-limit-tokens": "30000000", "x-ratelimit-remaining-tokens": "29999900", "x-ratelimit-reset-tokens": "0s",
			},
			want: sluice.RateLimits{
				HasRequests: true, LimitRequests: 10000, RemainingRequests: 9999, ResetRequests: 6 * time.Millisecond,
				HasTokens: true, LimitTokens: 30000000, RemainingTokens: 29999900,
			},
		},
		{
			name:    "tokens only, reset in seconds",
			headers: map[string]string{"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "7.5"},
			want:    sluice.RateLimits{HasTokens: true, LimitTokens: 1000, ResetTokens: 7500 * time.Millisecond},
		},
		{
			name:    "remaining without a limit is ignored",
			headers: map[string]string{"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s"},
			want:    sluice.RateLimits{},
		},
		{
			name:    "missing remaining reads as the whole limit",
			headers: map[string]string{"x-ratelimit-limit-requests": "60"},
			want:    sluice.RateLimits{HasRequests: true, LimitRequests: 60, RemainingRequests: 60},
		},
		{
			name: "garbage is absent",
			headers: map[string]string{
				"x-ratelimit-limit-requests": "lots", "x-ratelimit-remaining-requests": "1",
				"x-ratelimit-limit-tokens": "100", "x-ratelimit-remaining-tokens": "many", "x-ratelimit-reset-tokens": "whenever",
			},
			want: sluice.RateLimits{HasTokens: true, LimitTokens: 100, RemainingTokens: 100},
		},
		{
			name:    "floats and negatives",
			headers: map[string]string{"x-ratelimit-limit-requests": "100.0", "x-ratelimit-remaining-requests": "-2"},
			want:    sluice.RateLimits{HasRequests: true, LimitRequests: 100},
		},
		{
			name: "reset as a Unix time and an HTTP date",
			headers: map[string]string{
				"x-ratelimit-limit-requests": "1", "x-ratelimit-reset-requests": "1741964976",
				"x-ratelimit-limit-tokens": "1", "x-ratelimit-reset-tokens": "Fri, 14 Mar 2025 15:09:56 GMT",
			},
			want: sluice.RateLimits{
				HasRequests: true, LimitRequests: 1, RemainingRequests: 1, ResetRequests: 10 * time.Second,
				HasTokens: true, LimitTokens: 1, RemainingTokens: 1, ResetTokens: 30 * time.Second,
			},
		},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		if diff := cmp.Diff(tt.want, parseRateLimits(h, fixedNow)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		headers []string
		want    string
	}{
		{nil, ""},
		{[]string{"x-request-id", "req_1", "request-id", "req_2"}, "req_1"},
		{[]string{"request-id", "req_2"}, "req_2"},
		{[]string{"x-amzn-requestid", "amzn-3", "cf-ray", "ray"}, "amzn-3"},
		{[]string{"apim-request-id", "azure-4"}, "azure-4"},
		{[]string{"cf-ray", "8f1c2d-SJC"}, "8f1c2d-SJC"},
		{[]string{"x-request-id", "  ", "request-id", "req_5"}, "req_5"},
	}
	for _, tt := range tests {
		h := http.Header{}
		for i := 0; i+1 < len(tt.headers); i += 2 {
			h.Set(tt.headers[i], tt.headers[i+1])
		}
		if got := requestID(h); got != tt.want {
			t.Errorf("requestID(%v) = %q, want %q", tt.headers, got, tt.want)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range [][2]string{{"", "1"}, {"1500", ""}, {"", "Fri, 14 Mar 2025 15:10:26 GMT"}, {"-1", "-1"},
		{"NaN", "Inf"}, {"1e308", "1e308"}, {"0.0001", ""}, {"", "Mon, 01 Jan 0001 00:00:00 GMT"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, ms, after string) {
		h := http.Header{"Retry-After-Ms": {ms}, "Retry-After": {after}}
		d := parseRetryAfter(h, fixedNow)
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("parseRetryAfter(%q, %q) = %v, out of [0, %v]", ms, after, d, MaxRetryAfter)
		}
	})
}

func FuzzResetDuration(f *testing.F) {
	for _, s := range []string{"1s", "6m0s", "20ms", "1m30.5s", "0.5s", "12", "12.5", "1741964996",
		"1741964996500", "Fri, 14 Mar 2025 15:10:26 GMT", "2025-03-14T15:09:36Z", "1d2h", "9999999999999999999d", ".s", "1..5s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseReset(s, fixedNow)
		if d < 0 || d > MaxReset || (!ok && d != 0) {
			t.Fatalf("parseReset(%q) = %v, %v; out of bounds", s, d, ok)
		}
		rl := parseRateLimits(http.Header{hdrLimitTokens: {s}, hdrRemainingTokens: {s}, hdrResetTokens: {s}}, fixedNow)
		if rl.LimitTokens < 0 || rl.RemainingTokens < 0 || rl.ResetTokens < 0 || rl.ResetTokens > MaxReset {
			t.Fatalf("parseRateLimits with %q = %+v", s, rl)
		}
	})
}
