package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/report"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

const batchKey = "sk-batch-cli-0123456789"

// heldUpstream is an upstream that answers as the simulator does while open, and holds
// every request until its client gives up while not.
type heldUpstream struct {
	sim  *sim.Server
	open atomic.Bool
	stop chan struct{} // closed when the test ends: held requests end
}

func startHeldUpstream(t *testing.T, open bool) (*heldUpstream, string) {
	h := &heldUpstream{sim: sim.New(sim.Config{Seed: 1}), stop: make(chan struct{})}
	h.open.Store(open)
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		close(h.stop)
		ts.Close()
		h.sim.Close()
	})
	return h, ts.URL + "/v1"
}

func (h *heldUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body first: only then does the server notice a client that gives up.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if !h.open.Load() && strings.HasSuffix(r.URL.Path, "/completions") {
		select {
		case <-r.Context().Done():
		case <-h.stop:
		}
		return
	}
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.RequestURI = ""
	resp, err := h.sim.Transport().RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// startServeCmd runs sluice serve in process with args and returns its base URL.
func startServeCmd(t *testing.T, args ...string) string {
	t.Helper()
	log := &serveLog{changed: make(chan struct{}, 1)}
	interrupts := make(chan os.Signal, 1)
	e := &env{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: log,
		getenv:     func(k string) string { return map[string]string{clientKeysEnv: batchKey}[k] },
		interrupts: interrupts,
	}
	exited := make(chan int, 1)
	all := append([]string{"serve", "--listen", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "serve.db"), "--any-completion-window"}, args...)
	go func() { exited <- execute(context.Background(), e, all) }()
	base := log.waitListening(t, exited)
	t.Cleanup(func() {
		interrupts <- os.Interrupt
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return base + "/v1"
}

// startHeldServe runs sluice serve over a held upstream (closed: its requests are held),
// cutting held requests off after 200 ms and trying them again for as long as a batch
// runs, so that a cancelled or expired batch ends within 200 ms.
func startHeldServe(t *testing.T) (*heldUpstream, string) {
	up, upURL := startHeldUpstream(t, false)
	return up, startServeCmd(t, "--base-url", upURL, "--timeout", "200ms", "--max-attempts", "1000")
}

// batchInput writes a file of n requests to model a and m to model b, then lines.
func batchInput(t *testing.T, dir string, n, m int, extra ...string) (path string, ids []string) {
	var b strings.Builder
	for i := range n + m {
		model := "gpt-4o-mini"
		if i >= n {
			model = "gpt-4o"
		}
		id := fmt.Sprintf("req-%03d", i)
		ids = append(ids, id)
		fmt.Fprintf(&b, `{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":%q}],"max_tokens":8}}`+"\n", id, model, id)
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return writeFile(t, dir, "in.jsonl", b.String()), ids
}

// checkOutputFile checks that path has one line per id, in order.
func checkOutputFile(t *testing.T, path string, ids []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	i := 0
	for sc.Scan() {
		var l struct {
			CustomID string `json:"custom_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if i >= len(ids) || l.CustomID != ids[i] {
			t.Fatalf("output line %d is %q, want %q", i+1, l.CustomID, ids[min(i, len(ids)-1)])
		}
		i++
	}
	if i != len(ids) {
		t.Fatalf("output has %d lines, want %d", i, len(ids))
	}
}

// submit runs sluice batch submit --json and returns what it printed.
func submit(t *testing.T, keys map[string]string, in, base, store string) batchStatus {
	t.Helper()
	res := runCLI(t, keys, "batch", "submit", in, "--base-url", base, "--store", store, "--json")
	var st batchStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil || res.code != exitOK {
		t.Fatalf("submit: exit %d %v: %s %s", res.code, err, res.stdout, res.stderr)
	}
	return st
}

func TestBatchCommandsAgainstServe(t *testing.T) {
	base := startServeCmd(t)
	dir := t.TempDir()
	in, ids := batchInput(t, dir, 20, 10, `{"custom_id":"bad","method":"GET","url":"/v1/chat/completions","body":{"model":"gpt-4o"}}`)
	ids = append(ids, "bad")
	store := filepath.Join(dir, "sluice.db")
	keys := map[string]string{"OPENAI_API_KEY": batchKey}

	res := runCLI(t, keys, "batch", "submit", in, "--base-url", base, "--store", store, "--part-lines", "8", "--json")
	if res.code != exitOK {
		t.Fatalf("submit: exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "line 31: method") {
		t.Errorf("submit does not name the bad line and field: %s", res.stderr)
	}
	var st batchStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil || st.Job == "" {
		t.Fatalf("submit --json: %v: %s", err, res.stdout)
	}
	if len(st.Parts) != 5 || st.InvalidLines != 1 { // 20 in 8+8+4, 10 in 8+2
		t.Errorf("submit made %d parts with %d invalid lines: %+v", len(st.Parts), st.InvalidLines, st.Parts)
	}

	res = runCLI(t, keys, "batch", "watch", st.Job, "--store", store, "--poll", "20ms")
	if res.code != exitFailed { // the bad line failed
		t.Fatalf("watch: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"completed", "batch API", "vs all online"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("watch output lacks %q: %s", want, res.stdout)
		}
	}
	// watch writes the output file that its report names.
	checkOutputFile(t, strings.TrimSuffix(in, ".jsonl")+".results.jsonl", ids)
	out := filepath.Join(dir, "out.jsonl")
	res = runCLI(t, keys, "batch", "results", st.Job, "--store", store, "-o", out, "--json")
	var rr resultsReport
	if err := json.Unmarshal([]byte(res.stdout), &rr); err != nil || res.code != exitFailed { // the bad line failed
		t.Fatalf("results: exit %d, %v: %s %s", res.code, err, res.stdout, res.stderr)
	}
	if rr.Written != 31 || rr.Done != 30 || rr.Failed != 1 || rr.Missing != 0 {
		t.Errorf("results: %+v", rr)
	}
	checkOutputFile(t, out, ids)

	res = runCLI(t, keys, "resume", st.Job, "--store", store)
	if res.code != exitUsage || !strings.Contains(res.stderr, "sluice batch watch") {
		t.Errorf("resume of a batch job: exit %d: %s", res.code, res.stderr)
	}
	res = runCLI(t, keys, "batch", "submit", in, "--store", store, "--base-url", base, "--max-cost", "1")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--confirm-cost") {
		t.Errorf("submit --max-cost: exit %d: %s", res.code, res.stderr)
	}
	res = runCLI(t, keys, "batch", "submit", in, "--store", store, "--sim")
	if res.code != exitUsage || !strings.Contains(res.stderr, "no Batch API") {
		t.Errorf("submit --sim: exit %d: %s", res.code, res.stderr)
	}
}

// A watch stopped by Ctrl-C and started again carries on from the store: nothing is
// submitted twice, and the results are whole.
func TestBatchWatchStoppedAndRestarted(t *testing.T) {
	up, base := startHeldServe(t)
	dir := t.TempDir()
	in, ids := batchInput(t, dir, 12, 0)
	store := filepath.Join(dir, "sluice.db")
	keys := map[string]string{"OPENAI_API_KEY": batchKey}
	st := submit(t, keys, in, base, store)

	// The first watch sees the batch running, and is interrupted.
	log := &serveLog{changed: make(chan struct{}, 1)}
	interrupts := make(chan os.Signal, 1)
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: log,
		getenv: func(k string) string { return keys[k] }, interrupts: interrupts}
	exited := make(chan int, 1)
	go func() {
		exited <- execute(context.Background(), e, []string{"batch", "watch", st.Job, "--store", store, "--poll", "20ms"})
	}()
	timeout := time.After(30 * time.Second)
	for !strings.Contains(log.String(), "in_progress") {
		select {
		case <-log.changed:
		case code := <-exited:
			t.Fatalf("watch exited %d: %s", code, log.String())
		case <-timeout:
			t.Fatalf("watch never saw the batch running: %s", log.String())
		}
	}
	interrupts <- os.Interrupt
	if code := <-exited; code != exitInterrupted {
		t.Fatalf("interrupted watch exited %d: %s", code, log.String())
	}

	up.open.Store(true)
	res := runCLI(t, keys, "batch", "watch", st.Job, "--store", store, "--poll", "20ms", "--json")
	var end batchStatus
	if err := json.Unmarshal([]byte(res.stdout), &end); err != nil || res.code != exitOK {
		t.Fatalf("second watch: exit %d %v: %s %s", res.code, err, res.stdout, res.stderr)
	}
	if !end.Done || len(end.Parts) != 1 || end.Parts[0].BatchID != st.Parts[0].BatchID {
		t.Errorf("after the restart: %+v; want the one batch submitted, done", end)
	}
	out := filepath.Join(dir, "out.jsonl")
	if res := runCLI(t, keys, "batch", "results", st.Job, "--store", store, "-o", out); res.code != exitOK {
		t.Fatalf("results: exit %d: %s", res.code, res.stderr)
	}
	checkOutputFile(t, out, ids)
}

// sluice batch cancel keeps what finished and reports the rest as missing.
func TestBatchCancelCommand(t *testing.T) {
	_, base := startHeldServe(t)
	dir := t.TempDir()
	in, _ := batchInput(t, dir, 5, 0)
	store := filepath.Join(dir, "sluice.db")
	keys := map[string]string{"OPENAI_API_KEY": batchKey}
	st := submit(t, keys, in, base, store)
	res := runCLI(t, keys, "batch", "cancel", st.Job, "--store", store, "--poll", "20ms")
	if res.code != exitOK || !strings.Contains(res.stdout, "cancelled") {
		t.Fatalf("cancel: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, keys, "batch", "status", st.Job, "--store", store, "--json")
	var bs batchStatus
	if err := json.Unmarshal([]byte(res.stdout), &bs); err != nil || bs.State != string(sluice.JobCancelled) {
		t.Errorf("status after cancel: state %q (%v), want %q", bs.State, err, sluice.JobCancelled)
	}
	res = runCLI(t, keys, "batch", "results", st.Job, "--store", store, "-o", filepath.Join(dir, "out.jsonl"), "--json")
	var rr resultsReport
	if err := json.Unmarshal([]byte(res.stdout), &rr); err != nil {
		t.Fatalf("results: %v: %s", err, res.stdout)
	}
	if rr.Missing != 5 || len(rr.MissingRequests) != 5 || rr.MissingRequests[0].Where != "pending" {
		t.Errorf("results after cancel: %+v", rr)
	}
	res = runCLI(t, keys, "batch", "watch", st.Job, "--store", store, "--poll", "20ms")
	if res.code != exitInterrupted || !strings.Contains(res.stderr, "--resume") {
		t.Errorf("watch of a cancelled job: exit %d: %s", res.code, res.stderr)
	}
}

// run --mode hybrid goes online when the batch cannot finish in time, and meets the
// deadline. When it switches is the planner's, held to a clock of its own in batch's
// TestHybridGoesOnlineBeforeDeadline; here the deadline is far and the reserve nearly all
// of it, so the run goes online about a second in however loaded the machine is.
func TestHybridRunMeetsDeadline(t *testing.T) {
	t.Parallel()
	_, base := startHeldServe(t) // the batch's upstream never answers
	dir := t.TempDir()
	in, ids := batchInput(t, dir, 30, 0)
	out := filepath.Join(dir, "out.jsonl")
	keys := map[string]string{"OPENAI_API_KEY": batchKey}

	res := runCLI(t, keys, "run", in, "--mode", "hybrid", "--store", filepath.Join(dir, "x.db"))
	if res.code != exitUsage || !strings.Contains(res.stderr, "--deadline") {
		t.Errorf("hybrid without a deadline: exit %d: %s", res.code, res.stderr)
	}
	res = runCLI(t, keys, "run", in, "--mode", "hybrid", "--deadline", "2m", "--reserve", "119s", "--latency", "10ms",
		"--poll", "50ms", "--sim", "--batch-base-url", base, "--store", filepath.Join(dir, "sluice.db"), "-o", out, "--json", "--progress", "none")
	if res.code != exitOK {
		t.Fatalf("hybrid run: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if strings.Contains(res.stderr, "after its deadline") || !strings.Contains(res.stderr, "until the deadline") {
		t.Errorf("want it to go online for the deadline, and meet it: %s", res.stderr)
	}
	if !strings.Contains(res.stderr, "going online") {
		t.Errorf("stderr does not say it went online: %s", res.stderr)
	}
	var rep report.Job
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Batch == nil || rep.Batch.Parts != 1 || rep.Batch.OnlineTokens.Total == 0 || rep.Requests.Done != 30 {
		t.Errorf("report: %+v, batch %+v", rep, rep.Batch)
	}
	checkOutputFile(t, out, ids)
}

// The progress line never says 100% before every request is final, whatever the
// provider's counts say while it is finalizing.
func TestStatusLineNever100BeforeDone(t *testing.T) {
	part := &sluice.Part{Number: 1, Round: 1, Requests: 1000, BatchID: "batch_1", Status: sluice.BatchFinalizing,
		Counts: sluice.RequestCounts{Total: 1000, Completed: 1000}}
	prog := &batch.Progress{Parts: []*sluice.Part{part}, Round: 1, Active: 1,
		Stats: &sluice.Stats{Total: 1000, Done: 1000}} // collected by another process meanwhile
	line := statusLine(prog)
	if strings.Contains(line, "100.0%") || !strings.Contains(line, "finalizing") || !strings.Contains(line, "1000/1000 completed") {
		t.Errorf("finalizing: %q", line)
	}
	prog.Done, prog.Active, part.Collected = true, 0, true
	if line := statusLine(prog); !strings.HasPrefix(line, "100.0% final") {
		t.Errorf("done: %q", line)
	}
}

func TestDeadlines(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "6h", want: now.Add(6 * time.Hour)},
		{in: "90m", want: now.Add(90 * time.Minute)},
		{in: "2026-11-25T09:00:00Z", want: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)},
		{in: "-1h", bad: true},
		{in: "tomorrow", bad: true},
	} {
		got, err := parseDeadline(tc.in, now)
		if (err != nil) != tc.bad || (!tc.bad && !got.Equal(tc.want)) {
			t.Errorf("parseDeadline(%q) = %s, %v", tc.in, got, err)
		}
	}
	// Running the same hybrid command again keeps the deadline it started with.
	job := &sluice.Job{ID: "job_1", Options: json.RawMessage(`{"mode":"hybrid","deadline":"2026-11-24T15:00:00Z"}`)}
	o, err := keepDeadline(&env{stderr: io.Discard}, job, jobOptions{Mode: modeHybrid, Deadline: "2026-11-24T21:00:00Z"})
	if err != nil || o.Deadline != "2026-11-24T15:00:00Z" {
		t.Errorf("keepDeadline: %q, %v", o.Deadline, err)
	}
}

// sluice batch submit and watch killed (SIGKILL) at random moments, then run again: the
// provider runs every request once (no batch is created twice, whatever was in flight),
// and the results are whole.
func TestBatchKilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	up, upURL := startHeldUpstream(t, true)
	base := startServeCmd(t, "--base-url", upURL)
	dir := t.TempDir()
	const n = 1500
	in, ids := batchInput(t, dir, n, 0)
	store := filepath.Join(dir, "sluice.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	job, kills := "", 0
	for attempt := 0; attempt < 30; attempt++ {
		args := []string{"batch", "submit", in, "--base-url", base, "--store", store, "--part-lines", "100", "--poll", "10ms"}
		if job != "" {
			args = []string{"batch", "watch", job, "--store", store, "--poll", "10ms"}
		}
		var killAt time.Duration
		if kills < 5 {
			killAt = time.Duration(20+rng.IntN(300)) * time.Millisecond
		}
		killed, stderr, err := runKilledAt(t, exe, []string{"OPENAI_API_KEY=" + batchKey}, args, killAt)
		if killed {
			kills++
		} else if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		if job == "" {
			res := runCLI(t, nil, "jobs", "--store", store, "--json")
			var rows []jobSummary
			if json.Unmarshal([]byte(res.stdout), &rows) == nil && len(rows) == 1 {
				job = rows[0].Job
			}
			continue
		}
		if !killed {
			break // the watch ended: every request is final
		}
	}
	if kills == 0 {
		t.Fatal("nothing was killed")
	}
	out := filepath.Join(dir, "out.jsonl")
	if res := runCLI(t, map[string]string{"OPENAI_API_KEY": batchKey}, "batch", "results", job, "--store", store, "-o", out); res.code != exitOK {
		t.Fatalf("results: exit %d: %s", res.code, res.stderr)
	}
	checkOutputFile(t, out, ids)
	if got := up.sim.Stats().Requests; got != n {
		t.Errorf("the provider ran %d requests for %d lines (%d kills): a batch was created twice", got, n, kills)
	}
}

// An online run records what it learned of its upstream, for hybrid runs to plan with.
func TestRunRecordsUpstreamRate(t *testing.T) {
	dir := t.TempDir()
	in, _ := batchInput(t, dir, 20, 0)
	store := filepath.Join(dir, "sluice.db")
	if res := runCLI(t, nil, "run", in, "--sim", "--store", store, "--progress", "none"); res.code != exitOK {
		t.Fatalf("run: exit %d: %s", res.code, res.stderr)
	}
	st, err := sqlite.Open(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	obs, ok, err := st.Rate(context.Background(), simBaseURL)
	if err != nil || !ok || obs.Latency <= 0 {
		t.Errorf("rate after a run: %+v, %v, %v; want the run's median latency", obs, ok, err)
	}
}

// submit --watch is the whole job in one command: submit, follow, write the output.
func TestBatchSubmitWatch(t *testing.T) {
	base := startServeCmd(t)
	dir := t.TempDir()
	in, ids := batchInput(t, dir, 12, 6)
	out := filepath.Join(dir, "out.jsonl")
	res := runCLI(t, map[string]string{"OPENAI_API_KEY": batchKey}, "batch", "submit", in, "--base-url", base,
		"--store", filepath.Join(dir, "sluice.db"), "--watch", "--poll", "20ms", "-o", out)
	if res.code != exitOK || !strings.Contains(res.stdout, "vs all online") {
		t.Fatalf("submit --watch: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	checkOutputFile(t, out, ids)
}

// A provider that cannot be reached stops submit with exit 4 and the cause, and a watch
// gives up instead of warning forever; the job is kept for later.
func TestBatchUnreachableProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/v1"
	ln.Close() // nothing listens there now: connections are refused
	dir := t.TempDir()
	in, _ := batchInput(t, dir, 3, 0)
	store := filepath.Join(dir, "sluice.db")
	keys := map[string]string{"OPENAI_API_KEY": batchKey}

	res := runCLI(t, keys, "batch", "submit", in, "--base-url", dead, "--store", store)
	if res.code != exitAborted || !strings.Contains(res.stderr, "cannot be reached") || !strings.Contains(res.stderr, "refused") {
		t.Fatalf("submit to a dead provider: exit %d: %s", res.code, res.stderr)
	}
	st, err := sqlite.Open(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := st.Jobs(context.Background(), "")
	st.Close()
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs after the failed submit: %v %v", jobs, err)
	}
	res = runCLI(t, keys, "batch", "watch", jobs[0].ID, "--store", store, "--poll", "5ms", "--give-up", "50ms")
	if res.code != exitAborted || !strings.Contains(res.stderr, "cannot be reached") {
		t.Fatalf("watch of a dead provider: exit %d: %s", res.code, res.stderr)
	}
	if n := strings.Count(res.stderr, "warning:"); n > 3 {
		t.Errorf("watch repeated the same warning %d times:\n%s", n, res.stderr)
	}
}

// A base URL without /v1 (every path 404s) is named, with the fix, even when it is a
// sluice serve: not "run sluice serve in front of it".
func TestBatchBaseURLWithoutV1(t *testing.T) {
	base := strings.TrimSuffix(startServeCmd(t), "/v1")
	dir := t.TempDir()
	in, _ := batchInput(t, dir, 2, 0)
	res := runCLI(t, map[string]string{"OPENAI_API_KEY": batchKey}, "batch", "submit", in, "--base-url", base, "--store", filepath.Join(dir, "s.db"))
	if res.code != exitAborted || !strings.Contains(res.stderr, "usually ends in /v1 ("+base+"/v1)") {
		t.Fatalf("submit to a base URL without /v1: exit %d: %s", res.code, res.stderr)
	}
}
