package sim

import (
	"strings"
	"testing"
	"time"
)

func TestFormatReset(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {-time.Second, "0s"}, {time.Microsecond, "1ms"}, {6 * time.Millisecond, "6ms"},
		{1500*time.Millisecond + time.Microsecond, "1.501s"}, {time.Second, "1s"}, {6 * time.Minute, "6m0s"},
	}
	for _, tt := range tests {
		if got := formatReset(tt.d); got != tt.want {
			t.Errorf("formatReset(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestRequestLimit exhausts an RPM limit of 3, checks the headers and the 429, and that
// the bucket refills with time.
func TestRequestLimit(t *testing.T) {
	s := New(Config{RPM: 3})
	clk := newClock()
	s.now = clk.now
	body := chatBody("x", "")
	for i, want := range []string{"2", "1", "0"} {
		a := post(t, s, "/v1/chat/completions", body)
		h := a.header
		if a.status != 200 || h.Get("X-Ratelimit-Limit-Requests") != "3" || h.Get("X-Ratelimit-Remaining-Requests") != want ||
			h.Get("X-Ratelimit-Reset-Requests") != []string{"20s", "40s", "1m0s"}[i] {
			t.Fatalf("request %d: %d %v", i, a.status, h)
		}
		if h.Get("X-Ratelimit-Limit-Tokens") != "" {
			t.Errorf("token headers without a TPM limit")
		}
	}
	a := post(t, s, "/v1/chat/completions", body)
	checkError(t, a, 429, "requests", "rate_limit_exceeded")
	if a.header.Get("Retry-After") != "20" || a.header.Get("Retry-After-Ms") != "20000" || a.header.Get("X-Ratelimit-Remaining-Requests") != "0" {
		t.Errorf("429 headers %v", a.header)
	}
	clk.advance(19 * time.Second)
	a = post(t, s, "/v1/chat/completions", body)
	if a.status != 429 || a.header.Get("Retry-After") != "1" || a.header.Get("Retry-After-Ms") != "1000" {
		t.Errorf("after 19s: %d %v", a.status, a.header)
	}
	clk.advance(time.Second)
	if a := post(t, s, "/v1/chat/completions", body); a.status != 200 {
		t.Errorf("after 20s: %d %s", a.status, a.body)
	}
	if st := s.Stats(); st.Throttled != 2 || st.OK != 4 {
		t.Errorf("stats %+v", st)
	}
}

// TestTokenLimit checks TPM counts prompt plus max_tokens at admission.
func TestTokenLimit(t *testing.T) {
	s := New(Config{TPM: 100})
	clk := newClock()
	s.now = clk.now
	body := chatBody("ask r00001", `,"max_tokens":20`) // 11 prompt + 20 = 31 tokens
	for _, want := range []string{"69", "38", "7"} {
		a := post(t, s, "/v1/chat/completions", body)
		if a.status != 200 || a.header.Get("X-Ratelimit-Remaining-Tokens") != want || a.header.Get("X-Ratelimit-Limit-Tokens") != "100" {
			t.Fatalf("%d %v, want %s remaining", a.status, a.header, want)
		}
	}
	a := post(t, s, "/v1/chat/completions", body)
	checkError(t, a, 429, "tokens", "rate_limit_exceeded")
	// 24 tokens missing at 100 per minute: 14.4 s.
	if a.header.Get("Retry-After-Ms") != "14400" || a.header.Get("Retry-After") != "15" || a.header.Get("X-Ratelimit-Reset-Tokens") != "55.8s" {
		t.Errorf("429 headers %v", a.header)
	}
	if !strings.Contains(string(a.body), "Limit 100, Used 93, Requested 31") {
		t.Errorf("429 message: %s", a.body)
	}
	// A request larger than the limit never fits: no retry-after.
	a = post(t, s, "/v1/chat/completions", chatBody("x", `,"max_tokens":500`))
	checkError(t, a, 429, "tokens", "rate_limit_exceeded")
	if a.header.Get("Retry-After") != "" || !strings.Contains(string(a.body), "Request too large") {
		t.Errorf("too large: %v %s", a.header, a.body)
	}
}

func TestLimitOptions(t *testing.T) {
	s := New(Config{RPM: 1, TPM: 1000, NoLimitHeaders: true, NoRetryAfter: true})
	s.now = newClock().now
	body := chatBody("x", "")
	post(t, s, "/v1/chat/completions", body)
	a := post(t, s, "/v1/chat/completions", body)
	checkError(t, a, 429, "requests", "rate_limit_exceeded")
	for k := range a.header {
		if strings.HasPrefix(k, "X-Ratelimit") || strings.HasPrefix(k, "Retry-After") {
			t.Errorf("header %s sent", k)
		}
	}
}

// TestLimitSustained checks the limit can be used in full: after the initial burst, a
// client pacing itself at the limit is always admitted, and one 5% faster is not.
func TestLimitSustained(t *testing.T) {
	run := func(rate float64) (throttled int) {
		s := New(Config{RPM: 600})
		clk := newClock()
		s.now = clk.now
		body := chatBody("x", "")
		for range 600 { // the burst: a minute's worth
			if post(t, s, "/v1/chat/completions", body).status != 200 {
				t.Fatal("burst refused")
			}
		}
		every := time.Duration(float64(100*time.Millisecond) / rate)
		for range 200 {
			clk.advance(every)
			if post(t, s, "/v1/chat/completions", body).status == 429 {
				throttled++
			}
		}
		return throttled
	}
	if n := run(1); n != 0 {
		t.Errorf("%d of 200 requests at the limit throttled", n)
	}
	if n := run(1.05); n < 5 {
		t.Errorf("%d of 200 requests at 105%% of the limit throttled", n)
	}
}
