package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/pgtest"
	"github.com/sluice-llm/sluice/postgres"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/worker"
)

// bgCLI is sluice running in-process in the background, stopped like a process by a
// signal on its interrupts.
type bgCLI struct {
	sigs   chan os.Signal
	done   chan struct{}
	code   int
	stderr *syncBuffer
}

func startCLI(t *testing.T, envVars map[string]string, args ...string) *bgCLI {
	t.Helper()
	c := &bgCLI{sigs: make(chan os.Signal, 2), done: make(chan struct{}), stderr: &syncBuffer{}}
	e := &env{
		stdin:  strings.NewReader(""),
		stdout: &bytes.Buffer{}, stderr: c.stderr,
		getenv:     func(k string) string { return envVars[k] },
		interrupts: c.sigs,
	}
	go func() {
		defer close(c.done)
		c.code = execute(context.Background(), e, args)
	}()
	return c
}

// stop interrupts the command and waits for it to end.
func (c *bgCLI) stop() {
	c.sigs <- syscall.SIGTERM
	<-c.done
}

// TestWorkersShareAPostgresJob: sluice run on a PostgreSQL store, with a worker waiting
// beside it (--follow), sends every request exactly once between them, and run writes the
// whole output; the worker took part. A second run of the job while the first holds it
// is refused, and migrate finds the store up to date.
func TestWorkersShareAPostgresJob(t *testing.T) {
	storeURL, _ := pgtest.SchemaURL(t)
	dir := t.TempDir()
	const n = 400
	input := writeRequests(t, dir, n)
	out := filepath.Join(dir, "out.jsonl")
	up := newCountingSim(sim.Config{Seed: 1, TTFT: 5 * time.Millisecond})
	defer up.close()
	envVars := map[string]string{"OPENAI_API_KEY": "sk-test", "SLUICE_STORE": storeURL}

	w := startCLI(t, envVars, "worker", "--follow", "--poll", "5ms", "--concurrency", "4")
	res := runCLI(t, envVars, "run", input, "-o", out, "--base-url", up.url+"/v1", "--concurrency", "4", "--progress", "none")
	w.stop()
	if res.code != exitOK {
		t.Fatalf("run: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	if w.code != exitOK {
		t.Errorf("worker: exit %d, stderr:\n%s", w.code, w.stderr)
	}
	checkResults(t, readResults(t, out), n)
	up.idle()
	for id, k := range up.answered() {
		if k != 1 {
			t.Errorf("%s answered %d times, want once", id, k)
		}
	}
	if got := len(up.answered()); got != n {
		t.Errorf("%d requests answered, want %d", got, n)
	}
	if !strings.Contains(w.stderr.String(), "working job") || strings.Contains(w.stderr.String(), ": 0 requests finished here") {
		t.Errorf("the worker did not take part:\n%s", w.stderr)
	}

	res = runCLI(t, envVars, "migrate")
	if res.code != exitOK || !strings.Contains(res.stdout, "up to date") {
		t.Errorf("migrate: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, envVars, "jobs")
	if res.code != exitOK || !strings.Contains(res.stdout, "completed") {
		t.Errorf("jobs: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	// The estimate learns the expected output from the PostgreSQL store's history.
	res = runCLI(t, envVars, "estimate", input)
	if res.code != exitOK {
		t.Errorf("estimate: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestWorkerNeedsPostgres: a worker on a SQLite store is a usage error that says why,
// and creates no store.
func TestWorkerNeedsPostgres(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	res := runCLI(t, nil, "worker", "--store", path)
	if res.code != exitUsage || !strings.Contains(res.stderr, "PostgreSQL") {
		t.Errorf("exit %d, stderr %q; want a usage error naming PostgreSQL", res.code, res.stderr)
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("the worker created a SQLite store at %s", path)
	}
}

// TestWorkersShareABudget: --max-tokens holds over sluice run and a worker together: each
// alone would let itself spend the whole cap, so without the reservations in the store
// they would spend up to twice it.
func TestWorkersShareABudget(t *testing.T) {
	storeURL, _ := pgtest.SchemaURL(t)
	dir := t.TempDir()
	input := writeRequests(t, dir, 400)
	out := filepath.Join(dir, "out.jsonl")
	up := newCountingSim(sim.Config{Seed: 1, TTFT: 5 * time.Millisecond})
	defer up.close()
	envVars := map[string]string{"OPENAI_API_KEY": "sk-test", "SLUICE_STORE": storeURL}
	const maxTokens = 3000

	w := startCLI(t, envVars, "worker", "--follow", "--poll", "5ms", "--concurrency", "4")
	res := runCLI(t, envVars, "run", input, "-o", out, "--base-url", up.url+"/v1", "--concurrency", "4",
		"--max-tokens", fmt.Sprint(maxTokens), "--progress", "none")
	w.stop()
	if res.code != exitBudget {
		t.Fatalf("run: exit %d, want %d (budget); stderr:\n%s", res.code, exitBudget, res.stderr)
	}
	st, err := postgres.Open(t.Context(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stats := oneJobStats(t, st)
	if used := stats.Usage.Total(); used > maxTokens || used < maxTokens/2 {
		t.Errorf("the job used %d tokens, want at most the cap, %d, and most of it", used, maxTokens)
	}
	if !strings.Contains(w.stderr.String(), "working job") {
		t.Errorf("the worker did not take part:\n%s", w.stderr)
	}
}

// TestWorkerLeavesAStoppedJob: a worker stops working a job (its requests in flight
// finish) once the job's own process has stopped it, and leaves the rest pending.
func TestWorkerLeavesAStoppedJob(t *testing.T) {
	storeURL, _ := pgtest.SchemaURL(t)
	up := newCountingSim(sim.Config{Seed: 1, TTFT: 20 * time.Millisecond})
	defer up.close()
	ctx := t.Context()
	st, err := postgres.Open(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opts, err := json.Marshal(jobOptions{BaseURL: up.url + "/v1", APIKeyEnv: defaultAPIKeyEnv, Concurrency: 1, MaxAttempts: 3, Timeout: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	job := &sluice.Job{ID: "job-stopped", State: sluice.JobRunning, Input: "in.jsonl", Fingerprint: "fp", Options: opts, IngestDone: true}
	if err := st.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	const n = 500
	reqs := make([]sluice.NewRequest, n)
	for i := range reqs {
		id := fmt.Sprintf("r%05d", i+1)
		reqs[i] = sluice.NewRequest{Line: int64(i + 1), Request: sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions,
			Body: json.RawMessage(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ask ` + id + `"}],"max_tokens":5}`)}}
	}
	if err := st.AddRequests(ctx, job.ID, reqs); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateJob(ctx, job); err != nil { // IngestDone
		t.Fatal(err)
	}
	w := startCLI(t, map[string]string{"OPENAI_API_KEY": "sk-test", "SLUICE_STORE": storeURL}, "worker", "--job", job.ID, "--poll", "10ms")
	for s, err := st.Stats(ctx, job.ID); s.Done < 3; s, err = st.Stats(ctx, job.ID) {
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-w.done:
			t.Fatalf("the worker ended before the job was stopped: exit %d\n%s", w.code, w.stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
	job.State, job.Error = sluice.JobInterrupted, "interrupted"
	if err := st.UpdateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	<-w.done
	if w.code != exitOK {
		t.Errorf("worker: exit %d\n%s", w.code, w.stderr)
	}
	s, err := st.Stats(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.InFlight != 0 || s.Pending == 0 || s.Done+s.Pending != n {
		t.Errorf("after the worker left: %d done, %d pending, %d in flight; want the rest pending, none in flight", s.Done, s.Pending, s.InFlight)
	}
	if got, _ := st.Job(ctx, job.ID); got.State != sluice.JobInterrupted {
		t.Errorf("job %s after the worker left, want it left interrupted", got.State)
	}
}

// TestWorkerRunsOnTheSharedLease: the engines a worker makes see a store that other
// processes share, so that its claims hold for sharedLease, as sluice run's do, not for
// sluice.DefaultLease: the store the worker hands them (which records only a job's
// completion) is still a registry of workers.
func TestWorkerRunsOnTheSharedLease(t *testing.T) {
	storeURL, _ := pgtest.SchemaURL(t)
	ctx := t.Context()
	st, err := postgres.Open(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	job := &sluice.Job{ID: "job-lease", State: sluice.JobRunning, Input: "in.jsonl", Fingerprint: "fp", Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	errMade := errors.New("engine made")
	var sharedSeen bool
	err = worker.Run(ctx, worker.Config{Store: st, Job: job.ID,
		Engine: func(_ *sluice.Job, ws worker.Store) (*sluice.Engine, func(), error) {
			sharedSeen = shared(ws)
			return nil, nil, errMade
		}}, nil)
	if !errors.Is(err, errMade) {
		t.Fatalf("worker: %v, want it to have made an engine", err)
	}
	if !sharedSeen {
		t.Error("the worker's engines see a store nobody shares: their claims hold for sluice.DefaultLease, not sharedLease")
	}
}
