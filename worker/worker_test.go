package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// registry is a WorkerRegistry in which the worker is the only live one.
type registry struct{}

func (registry) Heartbeat(context.Context, string, string, time.Time, time.Duration) (int, error) {
	return 1, nil
}
func (registry) Leave(context.Context, string, string) error                   { return nil }
func (registry) PublishLimits(context.Context, string, float64, float64) error { return nil }
func (registry) SharedLimits(context.Context, string) (float64, float64, error) {
	return 0, 0, nil
}

// newJob opens a store in a temporary directory with one running job of n requests.
func newJob(t *testing.T, id string, n int) *sqlite.Store {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	job := &sluice.Job{ID: id, State: sluice.JobRunning, Input: "in.jsonl", Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	reqs := make([]sluice.NewRequest, n)
	for i := range reqs {
		reqs[i] = sluice.NewRequest{Line: int64(i + 1), Request: sluice.Request{CustomID: fmt.Sprintf("r%d", i+1), Method: "POST",
			URL: sluice.EndpointChatCompletions, Body: json.RawMessage(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`)}}
	}
	if err := st.AddRequests(ctx, id, reqs); err != nil {
		t.Fatal(err)
	}
	job.IngestDone = true
	if err := st.UpdateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	return st
}

// engines makes the engines of a worker's jobs over one simulator, counting them.
func engines(t *testing.T, made *int) func(*sluice.Job, worker.Store) (*sluice.Engine, func(), error) {
	s := sim.New(sim.Config{Seed: 1})
	t.Cleanup(s.Close)
	return func(_ *sluice.Job, st worker.Store) (*sluice.Engine, func(), error) {
		*made++
		up, err := openai.New(openai.Config{BaseURL: "http://sim.sluice.invalid/v1", HTTPClient: &http.Client{Transport: s.Transport()}})
		if err != nil {
			return nil, nil, err
		}
		eng, err := sluice.New(st, up, sluice.Config{Concurrency: 4})
		return eng, func() {}, err
	}
}

// A worker works a running job to its end, says so, records it completed, and stops when
// no job has work left.
func TestRunWorksAJobToItsEnd(t *testing.T) {
	st := newJob(t, "job-a", 20)
	var made int
	var events []worker.Event
	err := worker.Run(t.Context(), worker.Config{Store: st, Registry: registry{}, Engine: engines(t, &made),
		OnEvent: func(ev worker.Event) { events = append(events, ev) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []worker.EventKind
	for _, ev := range events {
		kinds = append(kinds, ev.Kind)
	}
	if len(events) != 3 || events[0].Kind != worker.Joined || events[1].Kind != worker.Left || events[1].Done != 20 || events[2].Kind != worker.Idle {
		t.Errorf("events %v (%+v), want joined, left with 20 done, idle", kinds, events)
	}
	if job, err := st.Job(t.Context(), "job-a"); err != nil || job.State != sluice.JobCompleted {
		t.Errorf("job after the worker: %+v, %v; want it completed", job, err)
	}
}

// A job Accept refuses, or one that is not running, is not worked.
func TestRunLeavesJobsAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		state  sluice.JobState
		accept func(*sluice.Job) bool
	}{
		{"refused", sluice.JobRunning, func(*sluice.Job) bool { return false }},
		{"interrupted", sluice.JobInterrupted, nil},
		{"cancelled", sluice.JobCancelled, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newJob(t, "job-a", 3)
			job, err := st.Job(t.Context(), "job-a")
			if err != nil {
				t.Fatal(err)
			}
			job.State = tc.state
			if err := st.UpdateJob(t.Context(), job); err != nil {
				t.Fatal(err)
			}
			var made int
			if err := worker.Run(t.Context(), worker.Config{Store: st, Registry: registry{}, Engine: engines(t, &made), Accept: tc.accept}, nil); err != nil {
				t.Fatal(err)
			}
			if made != 0 {
				t.Errorf("the worker made %d engines for a job it must leave alone", made)
			}
		})
	}
}

// A worker restricted to a job the store does not have says so.
func TestRunNoSuchJob(t *testing.T) {
	st := newJob(t, "job-a", 1)
	var made int
	err := worker.Run(t.Context(), worker.Config{Store: st, Registry: registry{}, Engine: engines(t, &made), Job: "job-b"}, nil)
	if !errors.Is(err, worker.ErrNoJob) {
		t.Errorf("Run for a missing job: %v, want ErrNoJob", err)
	}
}

// roundTripper is an http.RoundTripper made of a function.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A worker's runs record nothing of how the job ended but its completion: a run of the
// worker that is cut off leaves the job's state to its own process.
func TestWorkerRunsRecordOnlyCompletion(t *testing.T) {
	st := newJob(t, "job-a", 50)
	ctx, cancel := context.WithCancel(t.Context())
	s := sim.New(sim.Config{Seed: 1})
	defer s.Close()
	cutOff := roundTripper(func(r *http.Request) (*http.Response, error) {
		cancel() // the worker is stopped while its run sends
		return s.Transport().RoundTrip(r)
	})
	err := worker.Run(ctx, worker.Config{Store: st, Registry: registry{}, Engine: func(_ *sluice.Job, ws worker.Store) (*sluice.Engine, func(), error) {
		up, err := openai.New(openai.Config{BaseURL: "http://sim.sluice.invalid/v1", HTTPClient: &http.Client{Transport: cutOff}})
		if err != nil {
			return nil, nil, err
		}
		eng, err := sluice.New(ws, up, sluice.Config{Concurrency: 1})
		return eng, func() {}, err
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := st.Stats(t.Context(), "job-a")
	if err != nil || stats.Done == 50 {
		t.Fatalf("stats %+v, %v: the run was not cut off", stats, err)
	}
	if job, err := st.Job(t.Context(), "job-a"); err != nil || job.State != sluice.JobRunning {
		t.Errorf("job after a worker run cut off: %+v, %v; want it still running", job, err)
	}
}
