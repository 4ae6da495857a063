package sluice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/mock"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeUpstream is a scripted upstream: do decides every answer.
type fakeUpstream struct {
	do     func(ctx context.Context, req *sluice.Request, attempt int) (*sluice.Response, error)
	models []string

	mu    sync.Mutex
	calls map[string]int // attempts per custom_id
	total atomic.Int64
}

func (f *fakeUpstream) Do(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[req.CustomID]++
	n := f.calls[req.CustomID]
	f.mu.Unlock()
	f.total.Add(1)
	return f.do(ctx, req, n)
}

func (f *fakeUpstream) BaseURL() string { return "http://fake.test/v1" }

func (f *fakeUpstream) Models(context.Context) ([]string, error) { return f.models, nil }

func (f *fakeUpstream) attempts(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

// ok answers 200 with a body naming the request.
func ok(req *sluice.Request) (*sluice.Response, error) {
	body := fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion","answer_for":%q,"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`, req.CustomID)
	return &sluice.Response{StatusCode: 200, RequestID: "req_" + req.CustomID, Body: json.RawMessage(body),
		Usage: sluice.Usage{PromptTokens: 10, CompletionTokens: 5}}, nil
}

func fail(status int, code, msg string, retryAfter time.Duration) (*sluice.Response, error) {
	body := fmt.Sprintf(`{"error":{"message":%q,"type":"error","param":null,"code":%q}}`, msg, code)
	return &sluice.Response{StatusCode: status, Body: json.RawMessage(body)},
		&sluice.UpstreamError{StatusCode: status, Code: code, Message: msg, RetryAfter: retryAfter}
}

// sliceSource feeds prepared lines.
type sliceSource struct {
	lines []sluice.NewRequest
	i     int
}

func (s *sliceSource) Next() (sluice.NewRequest, error) {
	if s.i >= len(s.lines) {
		return sluice.NewRequest{}, io.EOF
	}
	s.i++
	return s.lines[s.i-1], nil
}

func requests(n int) *sliceSource {
	src := &sliceSource{}
	for i := range n {
		id := fmt.Sprintf("req-%04d", i+1)
		src.lines = append(src.lines, sluice.NewRequest{
			Line: int64(i + 1),
			Request: sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions,
				Body: json.RawMessage(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + id + `"}]}`)},
			Estimate: sluice.Estimate{Model: "gpt-4o-mini", PromptTokens: 10, MaxOutputTokens: 5},
		})
	}
	return src
}

func newStore(t *testing.T) sluice.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newJob(t *testing.T, st sluice.Store) *sluice.Job {
	t.Helper()
	job := &sluice.Job{ID: "job_" + strings.ReplaceAll(t.Name(), "/", "_"), State: sluice.JobRunning, Input: "test.jsonl", Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	return job
}

// fastConfig retries at once so tests finish quickly.
func fastConfig() sluice.Config {
	return sluice.Config{Concurrency: 16, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		BreakerCooldown: 10 * time.Millisecond, Timeout: 5 * time.Second}
}

func runJob(t *testing.T, st sluice.Store, up sluice.Upstream, cfg sluice.Config, job *sluice.Job, src sluice.Source) error {
	t.Helper()
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(context.Background(), job, src)
	if err != nil {
		t.Fatal(err)
	}
	return run.Wait()
}

// outputLine is one line of the output file, decoded.
type outputLine = testutil.OutputLine

func readOutput(t *testing.T, st sluice.Store, jobID string) (lines []outputLine, errs []outputLine) {
	t.Helper()
	var out, errBuf bytes.Buffer
	if _, err := sluice.WriteOutput(context.Background(), st, jobID, &out, &errBuf); err != nil {
		t.Fatal(err)
	}
	return testutil.DecodeOutput(t, out.Bytes()), testutil.DecodeOutput(t, errBuf.Bytes())
}

// checkExactlyOnce checks that the output has every request once, in input order.
func checkExactlyOnce(t *testing.T, lines []outputLine, n int) {
	t.Helper()
	if len(lines) != n {
		t.Fatalf("output has %d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		want := fmt.Sprintf("req-%04d", i+1)
		if l.CustomID == nil || *l.CustomID != want {
			t.Fatalf("output line %d is for %v, want %s", i+1, l.CustomID, want)
		}
	}
}

func TestRunAllSucceed(t *testing.T) {
	st := newStore(t)
	job := newJob(t, st)
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) }}
	if err := runJob(t, st, up, fastConfig(), job, requests(500)); err != nil {
		t.Fatalf("run: %v", err)
	}
	lines, errs := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 500)
	for _, l := range lines {
		if l.Response == nil || l.Response.StatusCode != 200 || !strings.Contains(string(l.Response.Body), *l.CustomID) || l.Error != nil {
			t.Fatalf("line for %s: want its own 200 answer, got %+v", *l.CustomID, l)
		}
		if !strings.HasPrefix(l.ID, "batch_req_") {
			t.Fatalf("line id %q", l.ID)
		}
	}
	if len(errs) != 0 {
		t.Errorf("errors file has %d lines, want 0", len(errs))
	}
	got, err := st.Job(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != sluice.JobCompleted || !got.IngestDone || got.Ingested != 500 {
		t.Errorf("job = %+v, want completed with 500 lines ingested", got)
	}
	stats, err := st.Stats(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Done != 500 || stats.Usage.PromptTokens != 5000 || stats.Attempts != 500 {
		t.Errorf("stats = %+v", stats)
	}
}

func TestRetries(t *testing.T) {
	// Each request fails in its own way before it succeeds; the script is by custom_id.
	script := map[string][]func() (*sluice.Response, error){
		"req-0001": {func() (*sluice.Response, error) { return fail(500, "server_error", "boom", 0) }},
		"req-0002": {func() (*sluice.Response, error) {
			return fail(429, "rate_limit_exceeded", "slow down", time.Millisecond)
		}},
		"req-0003": {func() (*sluice.Response, error) {
			return nil, &sluice.UpstreamError{Code: sluice.CodeConnection, Message: "connection reset by peer"}
		}},
		"req-0004": {func() (*sluice.Response, error) {
			return &sluice.Response{StatusCode: 200, Body: json.RawMessage(`{"id":"x","cho`)},
				&sluice.UpstreamError{StatusCode: 200, Code: sluice.CodeInvalidResponse, Message: "truncated body"}
		}},
		"req-0005": {
			func() (*sluice.Response, error) { return fail(503, "", "unavailable", 0) },
			func() (*sluice.Response, error) { return fail(502, "", "bad gateway", 0) },
		},
		"req-0006": {func() (*sluice.Response, error) { return fail(400, "invalid_request_error", "bad messages", 0) }},
		"req-0007": {func() (*sluice.Response, error) { return fail(500, "server_error", "always", 0) }},
		"req-0008": {func() (*sluice.Response, error) { return fail(408, "", "timeout", 0) }},
	}
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, attempt int) (*sluice.Response, error) {
		steps := script[req.CustomID]
		if req.CustomID == "req-0007" {
			return steps[0]()
		}
		if attempt <= len(steps) {
			return steps[attempt-1]()
		}
		return ok(req)
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.MaxAttempts = 4
	if err := runJob(t, st, up, cfg, job, requests(10)); err != nil {
		t.Fatalf("run: %v", err)
	}
	lines, errs := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 10)
	wantAttempts := map[string]int{"req-0001": 2, "req-0002": 2, "req-0003": 2, "req-0004": 2, "req-0005": 3,
		"req-0006": 1, "req-0007": 4, "req-0008": 2, "req-0009": 1, "req-0010": 1}
	for id, want := range wantAttempts {
		if got := up.attempts(id); got != want {
			t.Errorf("%s sent %d times, want %d", id, got, want)
		}
	}
	for _, l := range lines {
		switch *l.CustomID {
		case "req-0006":
			if l.Response == nil || l.Response.StatusCode != 400 || !strings.Contains(string(l.Response.Body), "bad messages") {
				t.Errorf("400 line = %+v, want the status and the error body", l)
			}
		case "req-0007":
			if l.Response == nil || l.Response.StatusCode != 500 {
				t.Errorf("always-500 line = %+v, want its last status", l)
			}
		default:
			if l.Response == nil || l.Response.StatusCode != 200 || !strings.Contains(string(l.Response.Body), *l.CustomID) {
				t.Errorf("line %s = %+v, want its own 200", *l.CustomID, l)
			}
		}
	}
	if len(errs) != 2 {
		t.Errorf("errors file has %d lines, want 2 (the 400 and the always-500)", len(errs))
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if stats.Throttled != 1 || stats.Retries != 10 || stats.Failed != 2 {
		t.Errorf("stats: throttled %d retries %d failed %d, want 1, 10, 2", stats.Throttled, stats.Retries, stats.Failed)
	}
}

func TestConnectionErrorWithoutAnswerIsAnErrorLine(t *testing.T) {
	up := &fakeUpstream{do: func(context.Context, *sluice.Request, int) (*sluice.Response, error) {
		return nil, &sluice.UpstreamError{Code: sluice.CodeConnection, Message: "connection refused"}
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.MaxAttempts = 2
	cfg.BreakerFailures = 1000
	if err := runJob(t, st, up, cfg, job, requests(3)); err != nil {
		t.Fatalf("run: %v", err)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 3)
	for _, l := range lines {
		if l.Response != nil || l.Error == nil || l.Error.Code != sluice.CodeConnection || !strings.Contains(l.Error.Message, "refused") {
			t.Errorf("line = %+v, want response null and a connection_error", l)
		}
	}
}

func TestWrongKeyAbortsFast(t *testing.T) {
	up := &fakeUpstream{do: func(context.Context, *sluice.Request, int) (*sluice.Response, error) {
		return fail(401, "invalid_api_key", "Incorrect API key provided: sk-abc***xyz.", 0)
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 64
	err := runJob(t, st, up, cfg, job, requests(1000))
	if !errors.Is(err, sluice.ErrAborted) || !errors.Is(err, sluice.ErrAuth) {
		t.Fatalf("run error = %v, want ErrAborted wrapping ErrAuth", err)
	}
	if !strings.Contains(err.Error(), "API key rejected by http://fake.test/v1") {
		t.Errorf("message %q does not name the upstream", err)
	}
	if n := up.total.Load(); n > 8 {
		t.Errorf("%d requests sent with a wrong key, want at most the slow-start window of 8", n)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if stats.Failed != 0 || stats.Done != 0 || stats.InFlight != 0 {
		t.Errorf("after the abort: %+v, want every request still pending for a rerun", stats)
	}
	got, _ := st.Job(context.Background(), job.ID)
	if got.State != sluice.JobAborted || !strings.Contains(got.Error, "API key rejected") {
		t.Errorf("job = %s %q, want aborted with the reason", got.State, got.Error)
	}
	// With the key fixed, a resume finishes the job and spends no attempts on the 401s.
	// The abort may come before the whole input is in: the resume reads it again, as
	// sluice resume does.
	up.do = func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) }
	if err := runJob(t, st, up, fastConfig(), got, requests(1000)); err != nil {
		t.Fatalf("resume: %v", err)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 1000)
}

func TestUnknownModelAbortsWithModelList(t *testing.T) {
	up := &fakeUpstream{models: []string{"gpt-4o", "gpt-4o-mini"}, do: func(context.Context, *sluice.Request, int) (*sluice.Response, error) {
		return fail(404, sluice.CodeModelNotFound, "The model `gpt-4o-mini` does not exist", 0)
	}}
	st := newStore(t)
	job := newJob(t, st)
	err := runJob(t, st, up, fastConfig(), job, requests(50))
	if !errors.Is(err, sluice.ErrAborted) {
		t.Fatalf("run error = %v, want aborted", err)
	}
	for _, want := range []string{`"gpt-4o-mini"`, "models available: gpt-4o, gpt-4o-mini"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestBadLinesAndDuplicates(t *testing.T) {
	src := requests(5)
	src.lines[1] = sluice.NewRequest{Line: 2, Err: &sluice.LineError{Line: 2, Field: "custom_id", Msg: "missing"}}
	src.lines[3].Request.CustomID = "req-0001" // a duplicate of line 1
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) }}
	st := newStore(t)
	job := newJob(t, st)
	if err := runJob(t, st, up, fastConfig(), job, src); err != nil {
		t.Fatalf("run: %v", err)
	}
	lines, errs := readOutput(t, st, job.ID)
	if len(lines) != 5 || len(errs) != 2 {
		t.Fatalf("%d output lines and %d error lines, want 5 and 2", len(lines), len(errs))
	}
	if l := lines[1]; l.Error == nil || l.Error.Code != sluice.CodeInvalidRequest || !strings.Contains(l.Error.Message, "line 2: custom_id: missing") {
		t.Errorf("bad line = %+v", l)
	}
	if l := lines[3]; l.Error == nil || l.Error.Code != sluice.CodeDuplicateID || !strings.Contains(l.Error.Message, "line 1") {
		t.Errorf("duplicate line = %+v", l)
	}
	if n := up.total.Load(); n != 3 {
		t.Errorf("sent %d requests, want only the 3 good ones", n)
	}
}

// blockingUpstream answers only when released, so a test can interrupt requests in flight.
type blockingUpstream struct {
	fakeUpstream
	started chan string
}

func TestCancelReleasesInFlightWithoutSpendingAttempts(t *testing.T) {
	up := &blockingUpstream{started: make(chan string, 100)}
	var release atomic.Bool
	up.do = func(ctx context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		if release.Load() {
			return ok(req)
		}
		up.started <- req.CustomID
		<-ctx.Done()
		return nil, &sluice.UpstreamError{Code: sluice.CodeTimeout, Err: ctx.Err()}
	}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 4
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run, err := eng.Start(ctx, job, requests(20))
	if err != nil {
		t.Fatal(err)
	}
	for range 4 { // the window is full
		<-up.started
	}
	run.Drain()
	cancel()
	if err := run.Wait(); !errors.Is(err, sluice.ErrInterrupted) {
		t.Fatalf("run error = %v, want ErrInterrupted", err)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if stats.Pending != 20 || stats.Attempts != 0 || stats.InFlight != 0 {
		t.Errorf("after cancel: pending %d attempts %d in flight %d, want 20, 0, 0", stats.Pending, stats.Attempts, stats.InFlight)
	}
	got, _ := st.Job(context.Background(), job.ID)
	if got.State != sluice.JobInterrupted {
		t.Errorf("job state %s, want interrupted", got.State)
	}
	release.Store(true)
	if err := runJob(t, st, up, fastConfig(), got, requests(20)); err != nil {
		t.Fatalf("resume: %v", err)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 20)
	stats, _ = st.Stats(context.Background(), job.ID)
	if stats.Attempts != 20 {
		t.Errorf("attempts after resume = %d, want 20: cut-off attempts are not spent", stats.Attempts)
	}
}

func TestResumeNeverResendsDone(t *testing.T) {
	var stop atomic.Int64
	stop.Store(100)
	up := &fakeUpstream{}
	var run *sluice.Run
	var once sync.Once
	drained := make(chan struct{})
	up.do = func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		if up.total.Load() >= stop.Load() {
			once.Do(func() { close(drained) })
		}
		return ok(req)
	}
	st := newStore(t)
	job := newJob(t, st)
	eng, err := sluice.New(st, up, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	run, err = eng.Start(context.Background(), job, requests(1000))
	if err != nil {
		t.Fatal(err)
	}
	<-drained
	run.Drain()
	if err := run.Wait(); !errors.Is(err, sluice.ErrInterrupted) {
		t.Fatalf("first run: %v, want interrupted", err)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if stats.Done < 100 || stats.Done == 1000 {
		t.Fatalf("first run finished %d, want a part", stats.Done)
	}
	if err := runJob(t, st, up, fastConfig(), job, requests(1000)); err != nil {
		t.Fatalf("resume: %v", err)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 1000)
	for i := range 1000 {
		if id := fmt.Sprintf("req-%04d", i+1); up.attempts(id) != 1 {
			t.Fatalf("%s sent %d times, want once", id, up.attempts(id))
		}
	}
}

func TestBreakerStopsDispatchWhileUpstreamIsDown(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var downCalls atomic.Int64
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		if down.Load() {
			if downCalls.Add(1) >= 40 {
				down.Store(false) // the upstream comes back
			}
			return fail(http.StatusServiceUnavailable, "", "down", 0)
		}
		return ok(req)
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 1
	cfg.BreakerFailures = 5
	cfg.MaxAttempts = 100
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(context.Background(), job, requests(20))
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	// 40 consecutive faults with a threshold of 5: the breaker opened and probed its way
	// back at least a few times rather than letting every retry through.
	if trips := run.Progress().BreakerTrips; trips < 2 {
		t.Errorf("breaker opened %d times during the outage, want several", trips)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 20)
	for _, l := range lines {
		if l.Response == nil || l.Response.StatusCode != 200 {
			t.Fatalf("line %+v, want 200 once the upstream is back", l)
		}
	}
}

func TestThrottledAttemptsCountAQuarter(t *testing.T) {
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, attempt int) (*sluice.Response, error) {
		if req.CustomID == "req-0001" && attempt <= 10 {
			return fail(429, "rate_limit_exceeded", "slow down", time.Millisecond)
		}
		if req.CustomID == "req-0002" {
			return fail(429, "rate_limit_exceeded", "slow down", time.Millisecond)
		}
		return ok(req)
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.MaxAttempts = 4
	if err := runJob(t, st, up, cfg, job, requests(3)); err != nil {
		t.Fatalf("run: %v", err)
	}
	// Ten 429s charge 3 of 4 attempts: the 11th attempt succeeds. A request answered
	// 429 forever fails once its quarters add up to 4: after 13 attempts.
	if got := up.attempts("req-0001"); got != 11 {
		t.Errorf("req-0001 sent %d times, want 11", got)
	}
	if got := up.attempts("req-0002"); got != 13 {
		t.Errorf("req-0002 sent %d times, want 13", got)
	}
	lines, _ := readOutput(t, st, job.ID)
	if l := lines[1]; l.Response == nil || l.Response.StatusCode != 429 {
		t.Errorf("always-429 line = %+v, want its last 429", l)
	}
}

// TestThrottledRetriesBackOffByCharge: a request that meets a run of random 429s without
// retry-after backs off by the attempts charged, a 429 a quarter: twelve 429s wait about
// as long as three failures. On main the backoff doubled with every 429, so that the
// last few requests of a run against a relay refusing 30% at random waited out tens of
// seconds after the rest (sluice bench random429-30 took 44 s for 20,000 requests).
func TestThrottledRetriesBackOffByCharge(t *testing.T) {
	var first, last atomic.Int64
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, attempt int) (*sluice.Response, error) {
		if req.CustomID != "req-0001" {
			return ok(req)
		}
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		last.Store(now)
		if attempt <= 12 {
			// No retry-after, and limit headers far above the run: the limiter does not
			// pace, so the request's own backoff is all that spaces the attempts.
			resp, err := fail(429, "rate_limit_exceeded", "slow down", 0)
			resp.Limits = sluice.RateLimits{HasRequests: true, LimitRequests: 1_000_000, RemainingRequests: 1_000_000}
			return resp, err
		}
		return ok(req)
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	// The base of a 429 without retry-after is a tenth of this: 10 ms. Twelve 429s
	// charge 3 attempts, so no wait is over 40 ms; doubling with each, the last three
	// would each be drawn up to 10, 5 and 2.5 s.
	cfg.BackoffBase, cfg.BackoffMax = 100*time.Millisecond, time.Minute
	if err := runJob(t, st, up, cfg, job, requests(3)); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := up.attempts("req-0001"); got != 13 {
		t.Fatalf("req-0001 sent %d times, want 13", got)
	}
	if d := time.Duration(last.Load() - first.Load()); d > 2*time.Second {
		t.Errorf("13 attempts took %v, want the 12 waits (each at most 40 ms) well under 2 s", d)
	}
}

func TestInsufficientQuotaAborts(t *testing.T) {
	var sent atomic.Int64
	var answered sync.Map // custom_id → true: answered 200, so paid for
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		if sent.Add(1) > 20 {
			return fail(429, "insufficient_quota", "You exceeded your current quota, please check your plan and billing details.", 0)
		}
		answered.Store(req.CustomID, true)
		return ok(req)
	}}
	st := newStore(t)
	job := newJob(t, st)
	err := runJob(t, st, up, fastConfig(), job, requests(500))
	if !errors.Is(err, sluice.ErrAborted) || !errors.Is(err, sluice.ErrQuota) {
		t.Fatalf("run error = %v, want aborted on quota", err)
	}
	if !strings.Contains(err.Error(), "quota exhausted at http://fake.test/v1: You exceeded") {
		t.Errorf("message %q", err)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	// The abort may come before the whole input is in the ledger (a rerun ingests the
	// rest): every request that is in it is done or pending.
	if stats.Failed != 0 || stats.Done < 20 || stats.Pending+stats.Done != stats.Total {
		t.Errorf("stats %+v: want the done kept and the rest pending, none failed", stats)
	}
	// Every answer that came back 200 is in the ledger as done, even those that arrived
	// while the abort was cutting the run off: a rerun must not pay for them again.
	done := map[string]bool{}
	if err := st.Results(context.Background(), job.ID, 0, 1000, func(r *sluice.Result) error {
		done[r.CustomID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	answered.Range(func(id, _ any) bool {
		if !done[id.(string)] {
			t.Errorf("%s was answered 200 but left pending: a rerun pays for it again", id)
		}
		return true
	})
}

// A run with StopWhenIdle ends once nothing is pending, leaving the requests another
// owner holds (a provider batch's) to it, and the job running.
func TestStopWhenIdleLeavesOthersRequests(t *testing.T) {
	ctx := context.Background()
	st, up := newStore(t), &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) }}
	job := newJob(t, st)
	src := requests(10)
	if err := st.AddRequests(ctx, job.ID, src.lines); err != nil {
		t.Fatal(err)
	}
	job.Ingested, job.IngestDone = 10, true
	held, err := st.Claim(ctx, sluice.ClaimParams{JobID: job.ID, Owner: "part-1", Max: 3, Lease: 24 * time.Hour})
	if err != nil || len(held) != 3 {
		t.Fatalf("claim: %d, %v", len(held), err)
	}
	eng, err := sluice.New(st, up, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(ctx, job, nil, sluice.StopWhenIdle())
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	stats, err := st.Stats(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Done != 7 || stats.InFlight != 3 || job.State != sluice.JobRunning {
		t.Fatalf("done %d, in flight %d, job %s; want 7 done, 3 held by the other owner, job running", stats.Done, stats.InFlight, job.State)
	}
	for _, it := range held {
		if n := up.attempts(it.Request.CustomID); n != 0 {
			t.Errorf("%s, held by another owner, was sent %d times", it.Request.CustomID, n)
		}
	}
}

// TestRunEndsWithoutStats: a run that runs dry asks the ledger whether anything is left
// with Unfinished, not Stats, whose scans of the whole job cost 0.2 s at the end of
// 100,000 requests. Stats is read once, by Start (the counts a resumed job starts from).
func TestRunEndsWithoutStats(t *testing.T) {
	real := newStore(t)
	job := newJob(t, real)
	st := mock.Wrap(real)
	var stats, unfinished atomic.Int64
	st.StatsFunc = func(ctx context.Context, jobID string) (*sluice.Stats, error) {
		stats.Add(1)
		return real.Stats(ctx, jobID)
	}
	st.UnfinishedFunc = func(ctx context.Context, jobID string) (bool, bool, error) {
		unfinished.Add(1)
		return real.Unfinished(ctx, jobID)
	}
	if err := runJob(t, st, okUpstream(), fastConfig(), job, requests(100)); err != nil {
		t.Fatal(err)
	}
	if stats.Load() != 1 || unfinished.Load() == 0 {
		t.Errorf("the run read Stats %d times and Unfinished %d times; want Stats once (Start's), Unfinished at its end",
			stats.Load(), unfinished.Load())
	}
	lines, _ := readOutput(t, real, job.ID)
	checkExactlyOnce(t, lines, 100)
}
