package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/metrics"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// source feeds n chat requests to gpt-4o-mini.
type source struct{ i, n int }

func (s *source) Next() (sluice.NewRequest, error) {
	if s.i == s.n {
		return sluice.NewRequest{}, io.EOF
	}
	s.i++
	id := fmt.Sprintf("req-%04d", s.i)
	return sluice.NewRequest{
		Line: int64(s.i),
		Request: sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions,
			Body: json.RawMessage(`{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"say ` + id + `"}]}`)},
		Estimate: sluice.Estimate{Model: "gpt-4o-mini", PromptTokens: 12, MaxOutputTokens: 16},
	}, nil
}

func newJob(t *testing.T) (sluice.Store, *sluice.Job) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	job := &sluice.Job{ID: "job_metrics", State: sluice.JobRunning, Input: "in.jsonl", Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	return st, job
}

// scrape GETs /metrics from s and parses it with the Prometheus text parser.
func scrape(t *testing.T, s *metrics.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr().String() + metrics.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

func startServer(t *testing.T, m *metrics.Metrics) *metrics.Server {
	t.Helper()
	s, err := metrics.Start("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// sum adds up the values of family name over the series whose labels include want.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
	var total float64
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// TestScrapeAfterRun runs a job against the simulator, with 5xx and 429 faults, and
// checks the scraped counters against what the simulator counted.
func TestScrapeAfterRun(t *testing.T) {
	s := sim.New(sim.Config{Seed: 3, Error5xx: 0.1, Random429: 0.1})
	defer s.Close()
	up, err := openai.New(openai.Config{BaseURL: "http://sim.test/v1", HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	srv := startServer(t, m)
	st, job := newJob(t)
	const price = 0.001 // USD per token
	eng, err := sluice.New(st, up, sluice.Config{
		Concurrency: 8, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond, MaxAttempts: 20,
		BreakerFailures: 1000, Observer: m,
		Cost: func(_ string, u sluice.Usage) float64 { return float64(u.Total()) * price },
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	run, err := eng.Start(t.Context(), job, &source{n: n})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	stats := s.Stats()
	if stats.Errors5xx == 0 || stats.Throttled == 0 || stats.OK != n {
		t.Fatalf("simulator stats %+v: want 5xx, 429s and %d answers", stats, n)
	}
	mfs := scrape(t, srv)
	jm := map[string]string{"job": job.ID, "model": "gpt-4o-mini"}
	with := func(k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range jm {
			out[a] = b
		}
		return out
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_requests_total", with("status", "ok"), float64(stats.OK)},
		{"sluice_requests_total", with("status", "throttled"), float64(stats.Throttled)},
		{"sluice_requests_total", with("status", "retry"), float64(stats.Errors5xx)},
		{"sluice_requests_total", with("status", "failed"), 0},
		{"sluice_requests_total", jm, float64(stats.Requests)},
		{"sluice_request_errors_total", with("code", "rate_limit_exceeded"), float64(stats.Throttled)},
		{"sluice_request_errors_total", jm, float64(stats.Throttled + stats.Errors5xx)},
		{"sluice_tokens_total", with("kind", "prompt"), float64(stats.PromptTokens)},
		{"sluice_tokens_total", with("kind", "completion"), float64(stats.CompletionTokens)},
		{"sluice_request_duration_seconds", jm, float64(stats.OK)},
		{"sluice_output_tokens_per_second", jm, float64(stats.OK)},
		{"sluice_time_to_first_token_seconds", jm, 0}, // not streamed
	} {
		if got := sum(mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	wantCost := float64(stats.PromptTokens+stats.CompletionTokens) * price
	if got := sum(mfs, "sluice_cost_usd_total", jm); got < wantCost*0.999999 || got > wantCost*1.000001 {
		t.Errorf("sluice_cost_usd_total = %v, want %v", got, wantCost)
	}
	for name, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "custom_id" {
					t.Errorf("%s has a custom_id label", name)
				}
			}
		}
	}
	// The run has ended: its gauges are gone.
	if mf := mfs["sluice_requests_in_flight"]; mf != nil {
		t.Errorf("sluice_requests_in_flight after the run: %v", mf)
	}
}

// blocking is an upstream whose requests wait until release is closed.
type blocking struct {
	started chan struct{}
	release chan struct{}
}

func (b *blocking) BaseURL() string { return "http://blocking.test" }

func (b *blocking) Do(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, &sluice.UpstreamError{Message: "canceled", Err: ctx.Err()}
	}
	return &sluice.Response{StatusCode: 200, Body: json.RawMessage(`{"object":"chat.completion","choices":[]}`),
		Usage: sluice.Usage{PromptTokens: 3, CompletionTokens: 2}, Latency: time.Millisecond}, nil
}

// TestGaugesWhileRunning scrapes while requests are in flight: the run's gauges are
// read from its progress, and disappear when it ends.
func TestGaugesWhileRunning(t *testing.T) {
	up := &blocking{started: make(chan struct{}, 16), release: make(chan struct{})}
	m := metrics.New()
	srv := startServer(t, m)
	st, job := newJob(t)
	const conc, n = 4, 10
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: conc, RPM: 6000, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(t.Context(), job, &source{n: n})
	if err != nil {
		t.Fatal(err)
	}
	for range conc {
		<-up.started
	}
	mfs := scrape(t, srv)
	j := map[string]string{"job": job.ID}
	for _, c := range []struct {
		name string
		want float64
	}{
		{"sluice_requests_in_flight", conc},
		{"sluice_requests_pending", n - conc},
		{"sluice_requests_ingested", n},
		{"sluice_limiter_requests_per_minute", 6000},
		{"sluice_limiter_learned", 0},
		{"sluice_breaker_open", 0},
		{"sluice_limiter_paused", 0},
	} {
		if got := sum(mfs, c.name, j); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	close(up.release)
	go func() {
		for range up.started {
		}
	}()
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	close(up.started)
	mfs = scrape(t, srv)
	if mf := mfs["sluice_requests_in_flight"]; mf != nil {
		t.Errorf("sluice_requests_in_flight after the run: %v", mf)
	}
	if got := sum(mfs, "sluice_requests_total", map[string]string{"status": "ok"}); got != n {
		t.Errorf("ok requests = %v, want %d", got, n)
	}
}

// progress is a fixed Progress.
type progress sluice.Progress

func (p progress) Progress() sluice.Progress { return sluice.Progress(p) }

func TestTrackedProgress(t *testing.T) {
	m := metrics.New()
	srv := startServer(t, m)
	p := progress{Total: 100, Done: 40, Failed: 5, InFlight: 7, BreakerOpen: true, BreakerTrips: 2,
		Limits: sluice.Limits{RPM: 500, TPM: 90_000, Learned: true, Window: 12, PausedUntil: time.Now().Add(time.Hour),
			Waits: 30, Waited: 4500 * time.Millisecond}}
	untrack := m.Track("job_x", p)
	mfs := scrape(t, srv)
	j := map[string]string{"job": "job_x"}
	for name, want := range map[string]float64{
		"sluice_requests_in_flight":          7,
		"sluice_requests_pending":            48,
		"sluice_limiter_requests_per_minute": 500,
		"sluice_limiter_tokens_per_minute":   90_000,
		"sluice_limiter_learned":             1,
		"sluice_limiter_window":              12,
		"sluice_limiter_paused":              1,
		"sluice_breaker_open":                1,
		"sluice_breaker_trips_total":         2,
		"sluice_limiter_waits_total":         30,
		"sluice_limiter_wait_seconds_total":  4.5,
	} {
		if got := sum(mfs, name, j); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if left := sum(mfs, "sluice_limiter_pause_remaining_seconds", j); left < 3500 || left > 3600 {
		t.Errorf("pause remaining = %v s, want about 3600", left)
	}
	untrack()
	if mf := scrape(t, srv)["sluice_requests_in_flight"]; mf != nil {
		t.Errorf("gauges after untrack: %v", mf)
	}
}

// TestErrorCodesBounded checks that an upstream inventing error codes cannot grow the
// code label without end.
func TestErrorCodesBounded(t *testing.T) {
	m := metrics.New()
	for i := range 200 {
		m.ObserveAttempt(&sluice.Attempt{JobID: "j", Model: "m", Kind: sluice.AttemptRetry, ErrorCode: fmt.Sprintf("code_%d", i)})
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_request_errors_total" {
			continue
		}
		var total float64
		for _, mt := range mf.GetMetric() {
			total += mt.GetCounter().GetValue()
		}
		if len(mf.GetMetric()) > 65 || total != 200 {
			t.Errorf("%d code series adding up to %v, want at most 65 adding up to 200", len(mf.GetMetric()), total)
		}
	}
}

func TestObserveAttemptDoesNotAllocate(t *testing.T) {
	m := metrics.New()
	a := &sluice.Attempt{JobID: "job_1", Model: "gpt-4o-mini", Kind: sluice.AttemptOK, StatusCode: 200,
		Latency: 800 * time.Millisecond, TTFT: 90 * time.Millisecond, Cost: 0.0001,
		Usage: sluice.Usage{PromptTokens: 120, CompletionTokens: 40, CachedTokens: 64}}
	m.ObserveAttempt(a)
	if allocs := testing.AllocsPerRun(1000, func() { m.ObserveAttempt(a) }); allocs != 0 {
		t.Errorf("ObserveAttempt allocates %v times per attempt, want 0", allocs)
	}
}

func BenchmarkObserveAttempt(b *testing.B) {
	m := metrics.New()
	a := &sluice.Attempt{JobID: "job_1", Model: "gpt-4o-mini", Kind: sluice.AttemptOK, StatusCode: 200,
		Latency: 800 * time.Millisecond, TTFT: 90 * time.Millisecond, Cost: 0.0001,
		Usage: sluice.Usage{PromptTokens: 120, CompletionTokens: 40}}
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveAttempt(a)
	}
}

// BenchmarkScrape measures one scrape of a registry holding a job's series and a run's
// gauges: what serving /metrics costs per scrape.
func BenchmarkScrape(b *testing.B) {
	m := metrics.New()
	for _, kind := range []sluice.AttemptKind{sluice.AttemptOK, sluice.AttemptThrottled, sluice.AttemptRetry} {
		m.ObserveAttempt(&sluice.Attempt{JobID: "job_1", Model: "gpt-4o-mini", Kind: kind, StatusCode: 429,
			Latency: time.Second, TTFT: time.Millisecond, Usage: sluice.Usage{PromptTokens: 1, CompletionTokens: 1}})
	}
	defer m.Track("job_1", progress{Total: 10})()
	h := m.Handler()
	req := httptest.NewRequest(http.MethodGet, metrics.Path, nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, "127.0.0.1:0", metrics.New(), time.Second) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after its context ended: %v", err)
	}
	if err := metrics.Serve(t.Context(), "127.0.0.1:notaport", metrics.New(), time.Second); err == nil {
		t.Error("Serve on a bad address: no error")
	}
}

// TestEndedJobsExpire runs jobs one after another: a job's series outlive its run by the
// retention, so scrapers read its final counts, and are then deleted; past MaxFinished
// ended jobs, the oldest go first. A serve running batches for months keeps a bounded
// number of series.
func TestEndedJobsExpire(t *testing.T) {
	s := sim.New(sim.Config{Seed: 1})
	defer s.Close()
	up, err := openai.New(openai.Config{BaseURL: "http://sim.test/v1", HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	m := metrics.NewWithOptions(metrics.Options{Retention: time.Minute, MaxFinished: 2, Now: clock})
	srv := startServer(t, m)
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: 4, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	run := func(id string) {
		t.Helper()
		job := &sluice.Job{ID: id, State: sluice.JobRunning, Input: "in.jsonl", Options: json.RawMessage(`{}`)}
		if err := st.CreateJob(t.Context(), job); err != nil {
			t.Fatal(err)
		}
		r, err := eng.Start(t.Context(), job, &source{n: 5})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	has := func(mfs map[string]*dto.MetricFamily, job string) bool {
		return sum(mfs, "sluice_requests_total", map[string]string{"job": job}) > 0
	}

	run("job_a")
	if mfs := scrape(t, srv); !has(mfs, "job_a") {
		t.Fatal("job_a's series are gone right after its run")
	}
	advance(59 * time.Second)
	if mfs := scrape(t, srv); !has(mfs, "job_a") {
		t.Fatal("job_a's series are gone before the retention passed")
	}
	advance(time.Second)
	if mfs := scrape(t, srv); has(mfs, "job_a") || len(mfs["sluice_requests_total"].GetMetric()) != 0 {
		t.Fatalf("job_a's series outlive the retention: %v", mfs["sluice_requests_total"])
	}

	for _, id := range []string{"job_b", "job_c", "job_d"} {
		run(id)
		advance(time.Second)
	}
	mfs := scrape(t, srv)
	if has(mfs, "job_b") || !has(mfs, "job_c") || !has(mfs, "job_d") {
		t.Fatalf("with MaxFinished 2, want the series of job_c and job_d only: b %v, c %v, d %v",
			has(mfs, "job_b"), has(mfs, "job_c"), has(mfs, "job_d"))
	}
}
