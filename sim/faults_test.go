package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// outcomes sends n chat requests one after the other and describes each answer.
func outcomes(t *testing.T, s *Server, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		a := send(context.Background(), s, http.MethodPost, "/v1/chat/completions", chatBody(fmt.Sprintf("ask r%05d", i), ""))
		switch {
		case errors.Is(a.err, syscall.ECONNRESET):
			out = append(out, "reset")
		case a.err != nil:
			t.Fatalf("request %d: %v", i, a.err)
		case a.status == 200 && !json.Valid(a.body):
			out = append(out, "truncated")
		default:
			out = append(out, fmt.Sprint(a.status))
		}
	}
	return out
}

func TestFaults(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 7, Error5xx: 0.1, Reset: 0.1, Truncate: 0.1}
	const n = 1000
	first := outcomes(t, New(cfg), n)
	if second := outcomes(t, New(cfg), n); !cmp.Equal(first, second) {
		t.Fatalf("the same seed gave different faults")
	}
	cfg.Seed = 8
	if other := outcomes(t, New(cfg), n); cmp.Equal(first, other) {
		t.Fatalf("another seed gave the same faults")
	}
	count := map[string]int{}
	for _, o := range first {
		count[o]++
	}
	for _, o := range []string{"reset", "truncated", "200"} {
		want := map[string]int{"reset": 100, "truncated": 100, "200": 700}[o]
		if c := count[o]; c < want*7/10 || c > want*13/10 {
			t.Errorf("%d %s in %d requests, want about %d: %v", c, o, n, want, count)
		}
	}
	if c := count["500"] + count["502"] + count["503"]; c < 70 || c > 130 || count["500"] == 0 || count["502"] == 0 || count["503"] == 0 {
		t.Errorf("5xx: %v", count)
	}
	s := New(Config{Seed: 7, Error5xx: 0.1, Reset: 0.1, Truncate: 0.1})
	outcomes(t, s, n)
	st := s.Stats()
	if st.Resets != int64(count["reset"]) || st.Truncated != int64(count["truncated"]) || st.OK != int64(count["200"]) ||
		st.Errors5xx != int64(count["500"]+count["502"]+count["503"]) || st.Requests != n {
		t.Errorf("stats %+v, outcomes %v", st, count)
	}
}

// TestFaultsConcurrent sends requests from many goroutines with every fault and a limit:
// every request is accounted for once (run with -race).
func TestFaultsConcurrent(t *testing.T) {
	t.Parallel()
	s := New(Config{Seed: 1, Error5xx: 0.05, Reset: 0.05, Truncate: 0.05, RPM: 100_000})
	defer s.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				a := send(context.Background(), s, http.MethodPost, "/v1/chat/completions", chatBody(fmt.Sprintf("g%d i%d", g, i), `,"stream":true`))
				if a.err != nil && !errors.Is(a.err, syscall.ECONNRESET) {
					t.Error(a.err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Requests != 800 || st.OK+st.Errors5xx+st.Resets+st.Truncated != 800 || st.Throttled != 0 {
		t.Errorf("stats %+v", st)
	}
}

// hangingServer returns a server whose every request hangs, and a channel that receives
// when one starts to.
func hangingServer() (*Server, chan struct{}) {
	s := New(Config{Hang: 1})
	hung := make(chan struct{}, 1)
	s.onHang = func() { hung <- struct{}{} }
	return s, hung
}

func TestHangReleasedByClose(t *testing.T) {
	t.Parallel()
	s, hung := hangingServer()
	done := make(chan answer)
	go func() {
		done <- send(context.Background(), s, http.MethodPost, "/v1/chat/completions", chatBody("x", ""))
	}()
	<-hung
	select {
	case a := <-done:
		t.Fatalf("a hung request returned before Close: %+v", a)
	default:
	}
	s.Close()
	a := <-done
	if !errors.Is(a.err, syscall.ECONNRESET) {
		t.Fatalf("released hang: %v, want a connection reset", a.err)
	}
	s.Close() // idempotent
	if st := s.Stats(); st.Hangs != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestHangReleasedByClient(t *testing.T) {
	t.Parallel()
	s, hung := hangingServer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan answer)
	go func() { done <- send(ctx, s, http.MethodPost, "/v1/chat/completions", chatBody("x", "")) }()
	<-hung
	cancel()
	if a := <-done; !errors.Is(a.err, context.Canceled) {
		t.Fatalf("abandoned hang: %v, want context.Canceled", a.err)
	}
}

// waits records the simulated waits of s and skips them.
func waits(s *Server) func() []time.Duration {
	var mu sync.Mutex
	var got []time.Duration
	s.onWait = func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d)
	}
	s.noWait = true
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), got...)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	s := New(Config{TTFT: 30 * time.Millisecond})
	got := waits(s)
	if a := post(t, s, "/v1/chat/completions", chatBody("x", "")); a.status != 200 {
		t.Fatal(a.status)
	}
	if diff := cmp.Diff([]time.Duration{30 * time.Millisecond}, got()); diff != "" {
		t.Errorf("waits with a TTFT of 30ms (-want +got):\n%s", diff)
	}

	// A client that gives up stops the wait.
	s = New(Config{TTFT: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.onWait = func(time.Duration) { cancel() } // gives up once the hour has begun
	if a := send(ctx, s, http.MethodPost, "/v1/chat/completions", chatBody("x", "")); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("got %v, want the client's cancel", a.err)
	}
	if st := s.Stats(); st.Canceled != 1 || st.OK != 0 {
		t.Errorf("stats %+v", st)
	}
	// Close ends the wait: the answer comes at once.
	s = New(Config{TTFT: time.Hour})
	waiting := make(chan struct{})
	s.onWait = func(time.Duration) { close(waiting) }
	done := make(chan answer)
	go func() {
		done <- send(context.Background(), s, http.MethodPost, "/v1/chat/completions", chatBody("x", ""))
	}()
	<-waiting
	s.Close()
	if a := <-done; a.err != nil || a.status != 200 {
		t.Fatalf("after Close: %+v", a)
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	s := New(Config{TTFT: 100 * time.Millisecond, PerToken: 10 * time.Millisecond, Jitter: 0.2, Seed: 9})
	lo, hi := time.Hour, time.Duration(0)
	for n := range uint64(1000) {
		d := s.latency(n, 10) // 200ms ± 20%
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 160*time.Millisecond || hi > 240*time.Millisecond || lo > 165*time.Millisecond || hi < 235*time.Millisecond {
		t.Errorf("latency between %v and %v, want 160ms to 240ms", lo, hi)
	}
	if New(Config{}).latency(1, 100) != 0 {
		t.Errorf("latency without TTFT or PerToken")
	}
}

func TestStreamPacing(t *testing.T) {
	t.Parallel()
	s := New(Config{PerToken: 2 * time.Millisecond})
	got := waits(s)
	a := post(t, s, "/v1/chat/completions", chatBody("x", `,"max_tokens":20,"stream":true`))
	// 20 content events each wait 2ms: 40ms.
	var sum time.Duration
	for _, d := range got() {
		sum += d
	}
	if n := len(got()); n != 20 || sum != 40*time.Millisecond || a.status != 200 {
		t.Errorf("stream of 20 tokens at 2ms each waited %d times, %v in all; status %d", n, sum, a.status)
	}
}

// TestStallMidStream checks the Stall fault, in process and over a socket: a stream sends
// its first half, then nothing, its connection open, until the server is closed; a
// request that does not stream is answered as usual.
func TestStallMidStream(t *testing.T) {
	for _, over := range []string{"transport", "socket"} {
		t.Run(over, func(t *testing.T) {
			s := New(Config{Stall: 1, Seed: 2})
			stalled := make(chan struct{}, 1)
			s.onHang = func() { stalled <- struct{}{} }
			client, base := &http.Client{Transport: s.Transport()}, "http://sim.test"
			if over == "socket" {
				srv := httptest.NewServer(s)
				defer srv.Close()
				client, base = srv.Client(), srv.URL
			}
			req, err := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
				strings.NewReader(chatBody("tell me a long story about streams", `,"stream":true,"max_tokens":40`)))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req) //nolint:bodyclose // closed by the defer below, read by a goroutine
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			read := make(chan []byte)
			go func() {
				b, _ := io.ReadAll(resp.Body)
				read <- b
			}()
			<-stalled
			select {
			case b := <-read:
				t.Fatalf("the stream ended while stalled: %q", b)
			default:
			}
			s.Close()
			b := <-read
			if !bytes.Contains(b, []byte(`"content":"`)) || bytes.Contains(b, []byte("[DONE]")) {
				t.Errorf("stalled stream: %q, want its first half without [DONE]", b)
			}
			if st := s.Stats(); st.Stalled != 1 {
				t.Errorf("stats %+v, want one stalled", st)
			}
		})
	}
	s := New(Config{Stall: 1})
	defer s.Close()
	if a := post(t, s, "/v1/chat/completions", chatBody("x", "")); a.status != 200 || !json.Valid(a.body) {
		t.Errorf("a request that does not stream: %d %s, want its answer", a.status, a.body)
	}
	if st := s.Stats(); st.Hangs != 0 || st.Stalled != 0 || st.OK != 1 {
		t.Errorf("a request that does not stream: stats %+v, want it answered", st)
	}
}
