package timeline_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/simjob"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/timeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStore is a sluice.TimelineStore of functions; only AppendTimeline is used by the
// Recorder.
type fakeStore struct {
	sluice.TimelineStore
	mu         sync.Mutex
	appendFunc func(jobID string, bs []sluice.TimelineBucket) error
}

func (f *fakeStore) AppendTimeline(_ context.Context, jobID string, bs []sluice.TimelineBucket) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appendFunc(jobID, bs)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestObserveSumsAttemptsPerBucket(t *testing.T) {
	written := map[string][]sluice.TimelineBucket{}
	st := &fakeStore{appendFunc: func(jobID string, bs []sluice.TimelineBucket) error {
		written[jobID] = append(written[jobID], bs...)
		return nil
	}}
	rec := timeline.New(st, timeline.Config{Interval: time.Second})
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, a := range []sluice.Attempt{
		{JobID: "a", Kind: sluice.AttemptOK, StatusCode: 200, Latency: 100 * time.Millisecond, TTFT: 20 * time.Millisecond,
			Usage: sluice.Usage{PromptTokens: 10, CompletionTokens: 5}, Cost: 0.25, Finished: at(0)},
		{JobID: "a", Kind: sluice.AttemptThrottled, StatusCode: 429, ErrorCode: "rate_limit_exceeded", Latency: time.Millisecond, Finished: at(500 * time.Millisecond)},
		{JobID: "a", Kind: sluice.AttemptRetry, ErrorCode: "timeout", Finished: at(900 * time.Millisecond)},
		{JobID: "a", Kind: sluice.AttemptFailed, StatusCode: 400, ErrorCode: "invalid_request_error", Latency: 5 * time.Millisecond, Finished: at(1500 * time.Millisecond)},
		{JobID: "a", Kind: sluice.AttemptInterrupted, Finished: at(1600 * time.Millisecond)},
		{JobID: "b", Kind: sluice.AttemptOK, StatusCode: 200, Latency: time.Second, Finished: at(0)},
	} {
		rec.ObserveAttempt(&a)
	}
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := byStart(written["a"])
	first, second := a[t0], a[t0.Add(time.Second)]
	if first == nil || second == nil || len(a) != 2 {
		t.Fatalf("job a's buckets: %+v", written["a"])
	}
	if first.Completed != 1 || first.Throttled != 1 || first.Retried != 1 || first.Failed != 0 ||
		first.Errors["429"] != 1 || first.Errors["timeout"] != 1 || first.Cost != 0.25 ||
		first.Usage.CompletionTokens != 5 || first.Latency.Count() != 1 || first.TTFT.Count() != 1 {
		t.Errorf("first bucket = %+v", first)
	}
	if second.Failed != 1 || second.Errors["400"] != 1 || second.Completed != 0 || second.Width != time.Second {
		t.Errorf("second bucket = %+v (the interrupted attempt counts nowhere)", second)
	}
	if b := written["b"]; len(b) != 1 || b[0].Completed != 1 {
		t.Errorf("job b's buckets: %+v", b)
	}
}

func byStart(bs []sluice.TimelineBucket) map[time.Time]*sluice.TimelineBucket {
	m := map[time.Time]*sluice.TimelineBucket{}
	for i := range bs {
		m[bs[i].Start] = &bs[i]
	}
	return m
}

func TestFailedWriteIsRetriedAndBounded(t *testing.T) {
	fail := true
	var written []sluice.TimelineBucket
	st := &fakeStore{appendFunc: func(_ string, bs []sluice.TimelineBucket) error {
		if fail {
			return errors.New("disk full")
		}
		written = append(written, bs...)
		return nil
	}}
	rec := timeline.New(st, timeline.Config{Interval: time.Second, MaxBacklog: 2})
	for i := range 3 {
		rec.ObserveAttempt(&sluice.Attempt{JobID: "a", Kind: sluice.AttemptOK, Finished: t0.Add(time.Duration(i) * time.Second)})
	}
	if err := rec.Close(t.Context()); err == nil {
		t.Fatal("Close with a failing store: no error")
	}
	fail = false
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(written) != 2 || !written[0].Start.Equal(t0.Add(time.Second)) && !written[1].Start.Equal(t0.Add(time.Second)) {
		t.Errorf("written after the store came back: %+v, want the newest 2 buckets", written)
	}
}

// TestRecorderFollowsARun runs a job on the simulator with a Recorder watching it, and
// checks that the timeline in the store adds up to the ledger.
func TestRecorderFollowsARun(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := timeline.New(st, timeline.Config{Interval: 50 * time.Millisecond, SampleEvery: 10 * time.Millisecond})
	rec.Start()
	job, err := simjob.Start(t.Context(), st, simjob.Options{JobID: "job-1", Requests: 60, BadEvery: 10,
		Sim:    sim.Config{Seed: 1, TTFT: 5 * time.Millisecond, PerToken: time.Millisecond},
		Engine: sluice.Config{Concurrency: 8, Observer: rec, Cost: func(string, sluice.Usage) float64 { return 0.001 }}})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	rec.Watch(job.Run)
	if err := job.Run.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, err := st.JobCounts(t.Context(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	tot := c.Totals
	if !c.HasTimeline || c.Total != 60 || tot.Completed != 54 || tot.Failed != 6 || tot.Errors["400"] != 6 {
		t.Errorf("counts = %+v, want 60 lines, 54 completed, 6 failed with 400", c)
	}
	if tot.Sample == nil || tot.Sample.Done != 54 || tot.Sample.Failed != 6 || tot.Sample.Total != 60 {
		t.Errorf("last sample = %+v, want the run's end: 54 done, 6 failed of 60", tot.Sample)
	}
	stats, err := st.Stats(t.Context(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if tot.Usage != stats.Usage {
		t.Errorf("timeline usage %+v, ledger usage %+v", tot.Usage, stats.Usage)
	}
	if tot.Latency.Count() != 54 {
		t.Errorf("latencies recorded: %d, want 54 (the answers that made a request done)", tot.Latency.Count())
	}
	bs, err := st.Timeline(t.Context(), "job-1", time.Time{})
	if err != nil || len(bs) == 0 {
		t.Fatalf("timeline: %d buckets, %v", len(bs), err)
	}
	var sum int64
	for _, b := range bs {
		sum += b.Completed
	}
	if sum != 54 {
		t.Errorf("buckets sum to %d completed, want 54", sum)
	}

	// The same job, rebuilt from its ledger, adds up the same.
	led, err := timeline.FromLedger(t.Context(), st, "job-1", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var done, failed int64
	for _, b := range led {
		done += b.Completed
		failed += b.Failed
	}
	if done != 54 || failed != 6 {
		t.Errorf("timeline from the ledger: %d done, %d failed; want 54, 6", done, failed)
	}
}
