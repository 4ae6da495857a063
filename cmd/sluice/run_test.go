package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/bench"
	"github.com/sluice-llm/sluice/internal/mock"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/report"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

// writeRequests writes n chat requests whose user message names the request, so that an
// answer from the simulator (which echoes the message) can be matched to its request.
func writeRequests(t *testing.T, dir string, n int, extra ...string) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"r%05d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ask r%05d"}],"max_tokens":20}}`+"\n", i+1, i+1)
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return writeFile(t, dir, "requests.jsonl", b.String())
}

// resultLine is one line of an output file, decoded.
type resultLine = testutil.OutputLine

func readResults(t *testing.T, path string) []resultLine { return testutil.ReadOutput(t, path) }

// checkResults checks one line per request, in order, each carrying its own answer.
func checkResults(t *testing.T, lines []resultLine, n int) {
	t.Helper()
	if len(lines) != n {
		t.Fatalf("%d result lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		id := fmt.Sprintf("r%05d", i+1)
		if l.CustomID == nil || *l.CustomID != id {
			t.Fatalf("result line %d is for %v, want %s", i+1, l.CustomID, id)
		}
		if l.Response == nil || l.Response.StatusCode != 200 || !strings.Contains(string(l.Response.Body), "ask "+id) {
			t.Fatalf("result for %s is not its own answer: %+v", id, l)
		}
	}
}

func TestRunWithSimulator(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 200)
	out := filepath.Join(dir, "out.jsonl")
	res := runCLI(t, nil, "run", input, "-o", out, "--sim", "--store", filepath.Join(dir, "s.db"), "--json", "--progress", "none")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), 200)
	var rep report.Job
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("--json report: %v\n%s", err, res.stdout)
	}
	if rep.State != "completed" || rep.Requests.Done != 200 || rep.Tokens.Prompt == 0 || rep.CostUSD <= 0 || !rep.CostComplete {
		t.Errorf("report = %+v", rep)
	}
	// The same command again resumes the completed job: nothing is sent, same output.
	res = runCLI(t, nil, "run", input, "-o", out, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none")
	if res.code != exitOK || !strings.Contains(res.stderr, "already complete") {
		t.Fatalf("rerun: exit %d, stderr %q", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), 200)
}

func TestBadLinesBecomeErrorLines(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 3,
		`{"custom_id":"bad1","method":"POST","url":"/v1/nope","body":{"model":"gpt-4o-mini"}}`,
		`not json at all`,
		`{"custom_id":"r00001","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}`,
	)
	out, errs := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "errors.jsonl")
	res := runCLI(t, nil, "run", input, "-o", out, "--errors", errs, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none")
	if res.code != exitFailed {
		t.Fatalf("exit %d, want %d (some requests failed); stderr:\n%s", res.code, exitFailed, res.stderr)
	}
	lines := readResults(t, out)
	checkResults(t, lines[:3], 3)
	want := []struct{ code, msg string }{
		{"invalid_request", "line 4: url"},
		{"invalid_request", "line 5"},
		{"duplicate_custom_id", "line 1"},
	}
	for i, w := range want {
		l := lines[3+i]
		if l.Error == nil || l.Error.Code != w.code || !strings.Contains(l.Error.Message, w.msg) {
			t.Errorf("line %d = %+v, want error %s mentioning %q", 4+i, l, w.code, w.msg)
		}
	}
	if n := len(readResults(t, errs)); n != 3 {
		t.Errorf("errors file has %d lines, want 3", n)
	}
}

func TestWrongKeyAbortsWithClearMessage(t *testing.T) {
	const secret = "sk-WRONG-key-0123456789"
	s := sim.New(sim.Config{APIKey: "sk-the-right-one"})
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.Close()
	dir := t.TempDir()
	input := writeRequests(t, dir, 500)
	out, store := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "s.db")
	base := srv.URL + "/v1"
	res := runCLI(t, map[string]string{"OPENAI_API_KEY": secret}, "run", input, "-o", out, "--base-url", base, "--store", store, "--progress", "none")
	if res.code != exitAborted {
		t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, exitAborted, res.stderr)
	}
	if !strings.Contains(res.stderr, "API key rejected by "+base) {
		t.Errorf("stderr does not say the key was rejected by %s:\n%s", base, res.stderr)
	}
	if st := s.Stats(); st.Requests > 8 {
		t.Errorf("%d requests sent with a wrong key, want at most 8", st.Requests)
	}
	// The key appears nowhere: not in output, errors, the report, or the store's files.
	for _, text := range []string{res.stdout, res.stderr} {
		if strings.Contains(text, secret) {
			t.Fatalf("the API key leaked into the command's output")
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(b), secret) {
			t.Fatalf("the API key leaked into %s", f)
		}
	}
}

// TestCrashAndResume kills a real sluice process with SIGKILL at random moments, resumes
// it, and checks the output has every request exactly once with its own answer. The
// simulator runs here, outside the killed process, and counts its answers per request:
// the answers a crash makes the job pay again (requests answered before the kill and
// sent again after it) must be at most the concurrency per kill, and the ledger's
// re-paid count must account for each.
func TestCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	up := newCountingSim(sim.Config{Seed: 1, TTFT: 20 * time.Millisecond, PerToken: time.Millisecond, Jitter: 0.3})
	defer up.close()
	dir := t.TempDir()
	const n, concurrency = 600, 32
	input := writeRequests(t, dir, n)
	out, store := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "s.db")
	args := []string{"run", input, "-o", out, "--base-url", up.url + "/v1", "--store", store, "--progress", "none",
		"--concurrency", strconv.Itoa(concurrency)}
	if raceEnabled { // see race_on_test.go: the simulator runs in the killed process, uncounted
		args = []string{"run", input, "-o", out, "--sim", "--store", store, "--progress", "none",
			"--concurrency", strconv.Itoa(concurrency)}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills, repaid, maxRepaid := 0, 0, 0
	// A request answered again was paid again because of the kill of the run that last
	// had it answered: byKill counts re-paid answers by that run, lastRun says which it is.
	byKill, lastRun := map[int]int{}, map[string]int{}
	for attempt := 0; attempt < 20; attempt++ {
		before := up.answered()
		var killAt time.Duration
		if kills < 4 {
			killAt = time.Duration(50+rng.IntN(500)) * time.Millisecond
		}
		killed, stderr, exitErr := runKilledAt(t, exe, []string{"OPENAI_API_KEY=sk-test"}, args, killAt)
		if killed {
			kills++
		} else if exitErr != nil {
			t.Fatalf("sluice failed: %v\n%s", exitErr, stderr)
		}
		up.idle() // answers to the killed process still on their way count for this run
		for id, k := range up.answered() {
			if k == before[id] {
				continue
			}
			if before[id] > 0 {
				byKill[lastRun[id]] += k - before[id]
				repaid += k - before[id]
			}
			lastRun[id] = attempt
		}
		if !killed {
			break
		}
	}
	if kills == 0 {
		t.Fatal("no run was killed")
	}
	checkResults(t, readResults(t, out), n)
	ledger := ledgerRepaid(t, store)
	for _, k := range byKill {
		maxRepaid = max(maxRepaid, k)
	}
	t.Logf("%d kills at concurrency %d: %d answers re-paid (at most %d for one kill); the ledger counts %d re-paid",
		kills, concurrency, repaid, maxRepaid, ledger)
	if raceEnabled {
		return
	}
	if maxRepaid > concurrency {
		t.Errorf("%d answers re-paid for one kill, want at most the concurrency (%d)", maxRepaid, concurrency)
	}
	// The ledger cannot tell a request answered before the kill from one still waiting
	// for its answer (the provider may bill that too), or from one claimed but not yet
	// sent: it counts them all, at most the concurrency and one claim (here also the
	// concurrency) per kill.
	if ledger < int64(repaid) || ledger > int64(2*concurrency*kills) {
		t.Errorf("the ledger counts %d re-paid; want from the %d the simulator answered again to %d", ledger, repaid, 2*concurrency*kills)
	}
}

// countingSim is the simulator behind an HTTP server, counting its answers by the request
// named in the user message ("ask r00001").
type countingSim struct {
	url    string
	srv    *httptest.Server
	mu     sync.Mutex
	counts map[string]int
	active sync.WaitGroup
	sim    *sim.Server
}

func newCountingSim(cfg sim.Config) *countingSim {
	c := &countingSim{counts: map[string]int{}, sim: sim.New(cfg)}
	c.srv = httptest.NewUnstartedServer(c)
	c.url = "http://" + c.srv.Listener.Addr().String()
	c.srv.Start() // c is not written after this: handlers read it
	return c
}

// ServeHTTP answers with the simulator and counts the answer.
func (c *countingSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.active.Add(1)
	defer c.active.Done()
	body, status := bench.AnswerWithSim(c.sim, w, r)
	if i := bytes.Index(body, []byte("ask r")); i >= 0 && status/100 == 2 && i+10 <= len(body) {
		c.mu.Lock()
		c.counts[string(body[i+4:i+10])]++
		c.mu.Unlock()
	}
}

// answered returns a copy of the answer counts.
func (c *countingSim) answered() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// idle waits until no request is being answered: call it when no client is left.
func (c *countingSim) idle() { c.active.Wait() }

// close stops the server and waits for every handler, a late one for a request a killed
// process sent included.
func (c *countingSim) close() {
	c.srv.Close()
	c.active.Wait()
}

// ledgerRepaid reads the re-paid count of the store's one job.
func ledgerRepaid(t *testing.T, path string) int64 {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return oneJobStats(t, st).Repaid
}

// oneJobStats returns the stats of the one job of st.
func oneJobStats(t *testing.T, st sluice.Store) *sluice.Stats {
	t.Helper()
	jobs, err := st.Jobs(context.Background(), "")
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs: %v (%d)", err, len(jobs))
	}
	stats, err := st.Stats(context.Background(), jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return stats
}

func TestBudgetStopsAndResumes(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 200)
	out, store := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "s.db")
	// gpt-4o-mini: about 10 prompt + 20 output tokens is about $0.0000135 a request at
	// worst, so $0.0005 stops the job after a few dozen.
	res := runCLI(t, nil, "run", input, "-o", out, "--sim", "--store", store, "--progress", "none", "--json", "--max-cost", "0.0005")
	if res.code != exitBudget {
		t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, exitBudget, res.stderr)
	}
	var rep report.Job
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.State != "budget_exhausted" || rep.CostUSD > 0.0005 || rep.Requests.Done == 0 || rep.Requests.Done == 200 {
		t.Fatalf("report after the budget stop: state %s, cost %v, done %d", rep.State, rep.CostUSD, rep.Requests.Done)
	}
	if !strings.Contains(res.stderr, "sluice resume "+rep.Job) {
		t.Errorf("stderr does not say how to resume:\n%s", res.stderr)
	}
	// The output so far has one line per finished request.
	if n := len(readResults(t, out)); int64(n) != rep.Requests.Done {
		t.Errorf("output has %d lines, want the %d done", n, rep.Requests.Done)
	}
	res = runCLI(t, nil, "resume", rep.Job, "--store", store, "--progress", "none", "--max-cost", "1")
	if res.code != exitOK {
		t.Fatalf("resume with a higher budget: exit %d\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), 200)
}

// TestBenchFaults runs the fault scenario of "sluice bench" small: the bench command
// itself works, and its exactly-once check passes on a real run.
func TestBenchFaults(t *testing.T) {
	res := runCLI(t, nil, "bench", "faults", "-n", "400", "--json", "--dir", t.TempDir())
	if res.code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	var results []bench.Result
	if err := json.Unmarshal([]byte(res.stdout), &results); err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || !results[0].Exact || results[0].Requests != 400 || results[0].Sent <= 400 {
		t.Errorf("results = %+v, want 400 requests exactly once, with retries of the injected faults", results)
	}
}

func TestConfirmCost(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 50)
	store := filepath.Join(dir, "s.db")
	args := []string{"run", input, "--sim", "--store", store, "--progress", "none", "--confirm-cost", "0.000001"}
	// Not on a terminal: without --yes nothing runs, and the message says why.
	res := runCLI(t, nil, args...)
	if res.code != exitUsage || !strings.Contains(res.stderr, "above --confirm-cost") || !strings.Contains(res.stderr, "--yes") {
		t.Fatalf("exit %d, stderr %q; want a usage error asking for --yes", res.code, res.stderr)
	}
	// On a terminal the user is asked; "n" runs nothing.
	ask := func(answer string) cliResult {
		var out, errb bytes.Buffer
		e := &env{stdin: strings.NewReader(answer), stdout: &out, stderr: &errb, getenv: func(string) string { return "" },
			interrupts: make(chan os.Signal), stdinTerminal: true}
		return cliResult{code: execute(context.Background(), e, args), stdout: out.String(), stderr: errb.String()}
	}
	if res := ask("n\n"); res.code != exitUsage || !strings.Contains(res.stderr, "run it? [y/N]") {
		t.Fatalf("answered n: exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Stat(strings.TrimSuffix(input, ".jsonl") + ".results.jsonl"); err == nil {
		t.Fatal("an output file was written though nothing was confirmed")
	}
	if res := ask("y\n"); res.code != exitOK {
		t.Fatalf("answered y: exit %d, stderr %q", res.code, res.stderr)
	}
	// Under the threshold, or with --yes, it runs without asking.
	res = runCLI(t, nil, "run", input, "--sim", "--store", filepath.Join(dir, "s2.db"), "--progress", "none", "--confirm-cost", "0.000001", "--yes")
	if res.code != exitOK {
		t.Fatalf("--yes: exit %d\n%s", res.code, res.stderr)
	}
	res = runCLI(t, nil, "run", input, "--sim", "--store", filepath.Join(dir, "s3.db"), "--progress", "none", "--confirm-cost", "100")
	if res.code != exitOK || strings.Contains(res.stderr, "confirm") {
		t.Fatalf("under the threshold: exit %d\n%s", res.code, res.stderr)
	}
}

// The hint after a budget stop names the cap that was set.
func TestBudgetHintNamesTheCap(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 100)
	res := runCLI(t, nil, "run", input, "-o", filepath.Join(dir, "out.jsonl"), "--sim", "--store", filepath.Join(dir, "s.db"),
		"--progress", "none", "--max-tokens", "300")
	if res.code != exitBudget || !strings.Contains(res.stderr, "--max-tokens") || strings.Contains(res.stderr, "--max-cost") {
		t.Fatalf("exit %d, want %d and a hint naming --max-tokens only:\n%s", res.code, exitBudget, res.stderr)
	}
}

// A run stopped early leaves its bar where it stopped, not drawn full.
func TestInterruptedBarIsNotFull(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 200)
	errb := &signalWriter{when: "requests ", seen: make(chan struct{})}
	interrupts := make(chan os.Signal, 1)
	go func() {
		<-errb.seen // the bar is drawn: the first Ctrl-C drains what is in flight
		interrupts <- os.Interrupt
	}()
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: errb, getenv: func(string) string { return "" }, interrupts: interrupts}
	code := execute(context.Background(), e, []string{"run", input, "--sim", "--store", filepath.Join(dir, "s.db"),
		"--progress", "bar", "-c", "2", "--rpm", "60", "-o", filepath.Join(dir, "out.jsonl")})
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d: %s", code, exitInterrupted, errb.String())
	}
	frames := strings.Split(errb.String(), "requests ")
	last := frames[len(frames)-1]
	if strings.Contains(last, "100 %") || strings.Contains(last, "200/200") {
		t.Errorf("the last frame of an interrupted run's bar is full: %q", last)
	}
}

// signalWriter keeps what is written and closes seen once it contains when.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	when string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.when) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLedgerFailureExitsOne: a run stopped by sluice's own failure (a full disk under the
// ledger) exits 1, not 4 (aborted) or 5 (interrupted), as the README says.
func TestLedgerFailureExitsOne(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	job := &sluice.Job{ID: "job_full", State: sluice.JobRunning, Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	full := &os.PathError{Op: "write", Path: "s.db-wal", Err: syscall.ENOSPC}
	wrapped := mock.Wrap(st)
	wrapped.CompleteFunc = func(context.Context, string, string, []sluice.Outcome) error {
		return fmt.Errorf("sqlite: %w", full)
	}
	up := &mock.Upstream{DoFunc: func(context.Context, *sluice.Request) (*sluice.Response, error) {
		return &sluice.Response{StatusCode: 200, Body: json.RawMessage(`{}`)}, nil
	}}
	eng, err := sluice.New(wrapped, up, sluice.Config{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(context.Background(), job, interruptSource(50))
	if err != nil {
		t.Fatal(err)
	}
	runErr := run.Wait()
	var stderr bytes.Buffer
	e := &env{stdout: io.Discard, stderr: &stderr}
	f := &runFlags{progress: "none"}
	o := jobOptions{Output: filepath.Join(dir, "out.jsonl")}
	if code := exitStatus(e, finishJob(context.Background(), e, f, st, job, o, pricing.Default(), run, runErr)); code != exitError {
		t.Errorf("exit %d, want %d; stderr: %s", code, exitError, stderr.String())
	}
	if !strings.Contains(stderr.String(), "no space left on device") {
		t.Errorf("stderr %q does not name the cause", stderr.String())
	}
	if got, _ := st.Job(context.Background(), job.ID); got.State != sluice.JobFailed {
		t.Errorf("job state %s, want failed", got.State)
	}
}
