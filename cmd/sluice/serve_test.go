package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-llm/sluice/internal/bench"
	"github.com/sluice-llm/sluice/internal/pgtest"
	"github.com/sluice-llm/sluice/internal/storeurl"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/sim"
)

// serveLog is a stderr that the test reads while serve writes it.
type serveLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return l.buf.Write(p)
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// waitListening waits for serve to say where it listens.
func (l *serveLog) waitListening(t *testing.T, exited <-chan int) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(l.String()); m != nil {
			return m[1]
		}
		select {
		case <-l.changed:
		case code := <-exited:
			t.Fatalf("serve exited %d: %s", code, l.String())
		case <-timeout:
			t.Fatalf("serve did not start: %s", l.String())
		}
	}
}

func TestServeCommandRunsBatchOverSimulator(t *testing.T) {
	hooks := make(chan []byte, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooks <- body
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "serve.yaml", `upstreams:
  - name: fast
    base_url: sim
    concurrency: 8
    stream: true
    stream_idle_timeout: 30s
    models: [gpt-4o-mini]
  - name: other
    base_url: sim
webhook_url: `+hook.URL+`
`)
	log := &serveLog{changed: make(chan struct{}, 1)}
	interrupts := make(chan os.Signal, 1)
	e := &env{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: log,
		getenv:     func(k string) string { return map[string]string{clientKeysEnv: "sk-one, sk-two"}[k] },
		interrupts: interrupts,
	}
	exited := make(chan int, 1)
	go func() {
		exited <- execute(context.Background(), e, []string{"serve", "--listen", "127.0.0.1:0",
			"--store", filepath.Join(dir, "sluice.db"), "--config", cfg})
	}()
	base := log.waitListening(t, exited)

	c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("sk-two"), option.WithMaxRetries(0))
	ctx := context.Background()
	in, err := c.Files.New(ctx, openai.FileNewParams{
		File: openai.File(strings.NewReader(
			`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}`+"\n"+
				`{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"yo"}]}}`+"\n"),
			"in.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeBatch,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	b = waitBatch(t, &c, b.ID)
	if b.RequestCounts.Completed != 2 || b.OutputFileID == "" {
		t.Errorf("completed batch: %+v", b)
	}
	// /metrics is served beside the API, and counted the batch's two answers.
	if got := scrapeCounter(t, base+"/metrics", "sluice_requests_total", "status", "ok"); got != 2 {
		t.Errorf("sluice_requests_total{status=\"ok\"} = %v, want 2", got)
	}
	// The upstream streams (stream: true in the config): both answers have a TTFT.
	if got := scrapeCounter(t, base+"/metrics", "sluice_time_to_first_token_seconds", "model", "gpt-4o-mini"); got != 2 {
		t.Errorf("sluice_time_to_first_token_seconds count = %v, want 2", got)
	}
	select {
	case body := <-hooks:
		if !strings.Contains(string(body), `"id":"`+b.ID+`"`) || !strings.Contains(string(body), `"status":"completed"`) {
			t.Errorf("webhook body: %s", body)
		}
	case <-time.After(30 * time.Second):
		t.Error("no webhook from the config file's webhook_url")
	}

	interrupts <- os.Interrupt
	select {
	case code := <-exited:
		if code != exitOK {
			t.Errorf("serve exited %d: %s", code, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on an interrupt")
	}
}

func TestServeCommandNeedsClientKeys(t *testing.T) {
	res := runCLI(t, nil, "serve", "--store", filepath.Join(t.TempDir(), "s.db"))
	if res.code != exitUsage || !strings.Contains(res.stderr, clientKeysEnv) {
		t.Errorf("serve without keys: exit %d, %s", res.code, res.stderr)
	}
}

// serveProcess is sluice serve running as a child process (the test binary with
// SLUICE_TEST_MAIN set).
type serveProcess struct {
	cmd    *exec.Cmd
	log    *serveLog
	exited chan int
	base   string // http://127.0.0.1:PORT
}

func startServeProcess(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{log: &serveLog{changed: make(chan struct{}, 1)}, exited: make(chan int, 1)}
	p.cmd = exec.Command(exe, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1", clientKeysEnv+"=sk-crash", "OPENAI_API_KEY=sk-upstream")
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.exited <- p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	p.base = p.log.waitListening(t, p.exited)
	return p
}

func (p *serveProcess) client() openai.Client {
	return openai.NewClient(option.WithBaseURL(p.base+"/v1/"), option.WithAPIKey("sk-crash"), option.WithMaxRetries(0))
}

// pollBatch polls the batch, as a client does, until cond holds or 60 s pass.
func pollBatch(t *testing.T, c openai.Client, id string, cond func(*openai.Batch) bool) *openai.Batch {
	t.Helper()
	return testutil.Poll(t, 60*time.Second, 5*time.Millisecond, func() (*openai.Batch, error) {
		return c.Batches.Get(context.Background(), id)
	}, cond)
}

// TestServeResumesAfterKill starts a second serve process over the store of one running
// a batch, kills the first mid-batch with SIGKILL, and checks that the second leaves the
// batch alone while the first lives, then takes it once its lease expires and completes
// it with every request exactly once, each with its own answer: on a SQLite file, and on
// PostgreSQL (files in a shared --files-dir) when SLUICE_TEST_POSTGRES_URL is set.
func TestServeResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	t.Run("sqlite", func(t *testing.T) {
		testServeResumesAfterKill(t, filepath.Join(t.TempDir(), "s.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		u, _ := pgtest.SchemaURL(t)
		testServeResumesAfterKill(t, u, "--files-dir", t.TempDir())
	})
}

func testServeResumesAfterKill(t *testing.T, store string, extra ...string) {
	const n, conc = 400, 8
	simSrv := sim.New(sim.Config{Seed: 3, TTFT: 20 * time.Millisecond}) // n/conc × 20 ms ≈ 1 s of work
	defer simSrv.Close()
	up := httptest.NewServer(simSrv)
	defer up.Close()
	dir := t.TempDir()
	input := writeRequests(t, dir, n)
	args := append([]string{"--store", store, "--base-url", up.URL + "/v1",
		"--concurrency", fmt.Sprint(conc), "--lease-ttl", "2s"}, extra...)

	first := startServeProcess(t, args...)
	c := first.client()
	ctx := context.Background()
	b := submitMidway(t, c, input, n)
	// A replica started mid-batch leaves it to the first while the first lives.
	second := startServeProcess(t, args...) // listening: it has looked at the batches
	if strings.Contains(second.log.String(), "resuming batch") {
		t.Fatalf("a replica started mid-batch took the batch another runs:\n%s", second.log.String())
	}
	first.kill(t)
	sentBefore := simSrv.Stats().Requests
	// What the ledger holds as done must never be sent again: the next server sends only
	// the rest, once each (the simulator injects no faults).
	loc, err := storeurl.Parse(store)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := openLocation(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	atKill, err := st.Stats(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if atKill.Done == 0 || atKill.Done >= n {
		t.Fatalf("the ledger had %d of %d requests done at the kill: not mid-batch", atKill.Done, n)
	}

	c = second.client()
	done := pollBatch(t, c, b.ID, batchFinal)
	if done.Status != openai.BatchStatusCompleted || done.RequestCounts.Completed != n || done.RequestCounts.Failed != 0 {
		t.Fatalf("resumed batch: %s, %+v, errors %+v\n%s", done.Status, done.RequestCounts, done.Errors, second.log.String())
	}
	if !strings.Contains(second.log.String(), "resuming batch") {
		t.Errorf("the second server did not say it resumed the batch:\n%s", second.log.String())
	}
	// Requests the killed server had written to its sockets may reach the simulator after
	// sentBefore was read: at most conc of them. Over the whole batch, the two servers sent
	// each request once, but for what the killed one had in flight.
	if sent := simSrv.Stats().Requests; sent < n || sent > n+conc {
		t.Errorf("%d requests reached the upstream for a batch of %d, want at most %d more", sent, n, conc)
	}
	if resent, want := simSrv.Stats().Requests-sentBefore, n-atKill.Done; resent < want || resent > want+conc {
		t.Errorf("%d requests reached the upstream after the kill, want the %d not done in the ledger then (+ up to %d in flight)",
			resent, want, conc)
	}

	checkOutput(t, fileContent(t, c, done.OutputFileID), n)
}

// submitMidway uploads input, creates a batch of its n requests and waits until a quarter
// of them are done.
func submitMidway(t *testing.T, c openai.Client, input string, n int64) *openai.Batch {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	in, err := c.Files.New(ctx, openai.FileNewParams{
		File:    openai.File(bytes.NewReader(data), "requests.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeBatch,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	mid := pollBatch(t, c, b.ID, func(b *openai.Batch) bool {
		return b.Status == openai.BatchStatusCompleted || b.RequestCounts.Completed >= n/4
	})
	if mid.Status != openai.BatchStatusInProgress || mid.RequestCounts.Completed >= n {
		t.Fatalf("the batch was not mid-way when polled: %s, %+v", mid.Status, mid.RequestCounts)
	}
	return b
}

// kill kills the serve process with SIGKILL and waits for it to end.
func (p *serveProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := <-p.exited; code != -1 {
		t.Fatalf("serve exited %d before the kill: %s", code, p.log.String())
	}
	p.exited <- -1 // for the cleanup
}

// batchFinal reports whether b has reached a final status.
func batchFinal(b *openai.Batch) bool {
	switch b.Status {
	case openai.BatchStatusCompleted, openai.BatchStatusFailed, openai.BatchStatusExpired, openai.BatchStatusCancelled:
		return true
	}
	return false
}

// TestBenchServe runs the serve scenario of "sluice bench" small: it works end to end and
// its exactly-once check passes (the time ratio means nothing at this size).
func TestBenchServe(t *testing.T) {
	res := runCLI(t, nil, "bench", "serve", "-n", "300", "--json", "--dir", t.TempDir())
	if res.code != exitOK && res.code != exitFailed {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var results []bench.Result
	if err := json.Unmarshal([]byte(res.stdout), &results); err != nil {
		t.Fatalf("%v: %s", err, res.stdout)
	}
	if len(results) != 1 || !results[0].Exact || results[0].Requests != 300 || results[0].BaselineWall <= 0 || results[0].Wall <= 0 {
		t.Errorf("bench serve: %+v", results)
	}
}

func TestServeCommandEnforcesBudgetsAndListsUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "serve.yaml", `upstreams:
  - name: sim
    base_url: sim
budgets:
  alice: {max_tokens: 25, period: daily}
`)
	store := filepath.Join(dir, "sluice.db")
	log := &serveLog{changed: make(chan struct{}, 1)}
	interrupts := make(chan os.Signal, 1)
	e := &env{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: log,
		getenv:     func(k string) string { return map[string]string{clientKeysEnv: "alice=sk-alice, bob=sk-bob"}[k] },
		interrupts: interrupts,
	}
	exited := make(chan int, 1)
	go func() {
		exited <- execute(context.Background(), e, []string{"serve", "--listen", "127.0.0.1:0", "--store", store, "--config", cfg})
	}()
	base := log.waitListening(t, exited)
	ctx := context.Background()
	line := `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}` + "\n"
	// Each of these costs 17 tokens at worst and at best: alice's 25 pay for one.
	bounded := `{"custom_id":"%s","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":10}}` + "\n"
	create := func(key, lines string, want openai.BatchStatus) (*openai.Batch, error) {
		c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
		in, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(strings.NewReader(lines), "in.jsonl", "application/jsonl"),
			Purpose: openai.FilePurposeBatch})
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
		if err != nil {
			return nil, err
		}
		return pollBatch(t, c, b.ID, func(b *openai.Batch) bool { return b.Status == want }), nil
	}
	// Alice's budget pays for the first of her two requests: the batch fails on
	// insufficient_quota with one done, and her next batch is refused.
	b, err := create("sk-alice", fmt.Sprintf(bounded, "a")+fmt.Sprintf(bounded, "b"), openai.BatchStatusFailed)
	if err != nil {
		t.Fatalf("alice's batch: %v", err)
	}
	if b.RequestCounts.Completed != 1 || len(b.Errors.Data) != 1 || b.Errors.Data[0].Code != "insufficient_quota" {
		t.Fatalf("alice's batch: %d done, errors %+v; want 1 done and insufficient_quota", b.RequestCounts.Completed, b.Errors)
	}
	for range 2 {
		if _, err := create("sk-bob", line, openai.BatchStatusCompleted); err != nil {
			t.Fatalf("batch of bob: %v", err)
		}
	}
	_, err = create("sk-alice", line, openai.BatchStatusCompleted)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "insufficient_quota" {
		t.Fatalf("alice's second batch: %v, want 429 insufficient_quota", err)
	}
	interrupts <- os.Interrupt
	if code := <-exited; code != exitOK {
		t.Fatalf("serve exited %d: %s", code, log.String())
	}

	res := runCLI(t, nil, "serve", "usage", "--store", store, "--period", "daily", "--json")
	if res.code != exitOK {
		t.Fatalf("serve usage: exit %d: %s", res.code, res.stderr)
	}
	var rep usageReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("serve usage --json: %v: %s", err, res.stdout)
	}
	if len(rep.Keys) != 2 || rep.Keys[0].Key != "bob" || rep.Keys[0].Batches != 2 || rep.Keys[1].Key != "alice" ||
		rep.Keys[1].TotalTokens == 0 || rep.Keys[0].TotalTokens <= rep.Keys[1].TotalTokens {
		t.Errorf("usage %+v, want bob's 2 batches first, then alice's 1", rep.Keys)
	}
	if strings.Contains(res.stdout, "sk-") {
		t.Errorf("usage shows a key: %s", res.stdout)
	}
	text := runCLI(t, nil, "serve", "usage", "--store", store, "--period", "daily")
	if text.code != exitOK || !regexp.MustCompile(`(?m)^\s*bob\s+2\s`).MatchString(text.stdout) {
		t.Errorf("serve usage: exit %d:\n%s%s", text.code, text.stdout, text.stderr)
	}
}

func TestClientKeys(t *testing.T) {
	cfg := &serveConfig{
		Budgets:       map[string]budgetConfig{"alice": {MaxCostUSD: 5, Period: "daily"}},
		DefaultBudget: &budgetConfig{MaxTokens: 100},
	}
	keys, err := clientKeys(" alice=sk-a , sk-plain,", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Name != "alice" || keys[0].Budget.MaxCost != 5 || keys[0].Budget.Period != "daily" ||
		!strings.HasPrefix(keys[1].Name, "key-") || keys[1].Budget.MaxTokens != 100 || strings.Contains(keys[1].Name, "plain") {
		t.Errorf("keys %+v", keys)
	}
	for _, tt := range []struct{ name, env string }{
		{"a budget for no key", "bob=sk-b"},
		{"two keys named alike", "alice=sk-a,alice=sk-b"},
		{"an empty key", "alice="},
		{"no keys", " , "},
	} {
		if _, err := clientKeys(tt.env, cfg); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}
