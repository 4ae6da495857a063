package batch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const serveKey = "sk-batch-test-0123456789"

// upstream counts the answers a simulator gave, per request, and holds back the requests
// whose prompt starts with "slow-" until release is called (or their sender gives up).
type upstream struct {
	sim  *sim.Server
	gate chan struct{}
	once sync.Once

	mu       sync.Mutex
	answered map[string]int // 2xx answers per prompt (= custom_id)
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{sim: sim.New(sim.Config{Seed: 1}), gate: make(chan struct{}), answered: map[string]int{}}
	t.Cleanup(u.sim.Close)
	return u
}

// release lets the slow requests through.
func (u *upstream) release() { u.once.Do(func() { close(u.gate) }) }

var contentRE = regexp.MustCompile(`"content":"([^"]+)"`)

func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	m := contentRE.FindSubmatch(body)
	if m != nil && bytes.HasPrefix(m[1], []byte("slow-")) {
		select {
		case <-u.gate:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	resp, err := u.sim.Transport().RoundTrip(req)
	if err == nil && resp.StatusCode/100 == 2 && m != nil {
		u.mu.Lock()
		u.answered[string(m[1])]++
		u.mu.Unlock()
	}
	return resp, err
}

func (u *upstream) count(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.answered[id]
}

func (u *upstream) client(t *testing.T) *openai.Client {
	c, err := openai.New(openai.Config{BaseURL: "http://sim.sluice.invalid/v1", HTTPClient: &http.Client{Transport: u}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// provider is an in-process sluice serve over an upstream: the Batch API the tests run
// against.
type provider struct {
	up  *upstream
	api *openai.Client
	ts  *httptest.Server
}

// apiWithKey is a client of the provider that presents key.
func (p *provider) apiWithKey(t *testing.T, key string) *openai.Client {
	api, err := openai.New(openai.Config{BaseURL: p.ts.URL + "/v1", APIKey: key, HTTPClient: p.ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func sqliteOpen(path string) (*sqlite.Store, error) { return sqlite.Open(context.Background(), path) }

type providerOpts struct {
	maxLines, maxBytes int64
	clock              service.Clock // the provider's clock; nil: the system's
}

func startProvider(t *testing.T, opts providerOpts) *provider {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	up := newUpstream(t)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "serve.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Held requests time out after 300 ms and are tried again, for as long as the batch
	// runs: a batch the provider cancels or expires drains within 300 ms, as a real one
	// whose requests are slow drains when they end.
	eng, err := sluice.New(st, up.client(t), sluice.Config{Concurrency: 8, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Timeout: 300 * time.Millisecond, MaxAttempts: 1000, BreakerFailures: 1000, BreakerCooldown: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Config{
		Store: st, FilesDir: filepath.Join(dir, "files"),
		Routes:    []service.Route{{Name: "sim", Engine: eng}},
		KeyHashes: []string{service.HashKey(serveKey)},
		MaxLines:  opts.maxLines, MaxBytes: opts.maxBytes, AnyCompletionWindow: true,
		Clock: opts.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := sluicehttp.NewServer(svc, nil)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		up.release() // let held requests end so the server can stop
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	p := &provider{up: up, ts: ts}
	p.api = p.apiWithKey(t, serveKey)
	return p
}

// client is the side under test: a ledger with one job, ingested from lines.
type client struct {
	st  *sqlite.Store
	job *sluice.Job
	ids []string // custom_ids in input order
}

// request is one input line: its custom_id is also its prompt, which the simulator
// echoes in its answer.
func request(id, model string) string {
	return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":%q}],"max_tokens":5}}`, id, model, id)
}

func newClient(t *testing.T, lines []string) *client {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return ingestInto(t, st, lines)
}

func ingestInto(t *testing.T, st *sqlite.Store, lines []string) *client {
	t.Helper()
	ctx := context.Background()
	job := &sluice.Job{ID: "job_" + strings.ReplaceAll(t.Name(), "/", "_"), State: sluice.JobRunning, Input: "in.jsonl", Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	src := ingest.NewSource(strings.NewReader(strings.Join(lines, "\n")+"\n"), tokens.Default())
	var bad []string
	if err := batch.Ingest(ctx, st, job, src, func(le *sluice.LineError) { bad = append(bad, le.Error()) }); err != nil {
		t.Fatal(err)
	}
	c := &client{st: st, job: job}
	for _, l := range lines {
		var v struct {
			CustomID string `json:"custom_id"`
		}
		if json.Unmarshal([]byte(l), &v) == nil {
			c.ids = append(c.ids, v.CustomID)
		}
	}
	return c
}

func newRunner(t *testing.T, st batch.Store, api batch.API, cfg batch.Config) *batch.Runner {
	t.Helper()
	r, err := batch.New(st, api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stepUntil steps the job until cond holds of its progress, polling every few
// milliseconds (the provider runs in process, and polling is the Batch API's protocol),
// or fails the test after 20 s.
func stepUntil(t *testing.T, r *batch.Runner, job *sluice.Job, submit bool, cond func(*batch.Progress) bool) *batch.Progress {
	t.Helper()
	return testutil.Poll(t, 20*time.Second, 5*time.Millisecond, func() (*progressOf, error) {
		prog, err := r.Step(context.Background(), job, submit)
		return &progressOf{prog}, err
	}, func(p *progressOf) bool { return cond(p.Progress) }).Progress
}

// progressOf prints a step's progress in full when a poll gives up on it.
type progressOf struct{ *batch.Progress }

func (p *progressOf) String() string {
	return fmt.Sprintf("round %d, %d active parts, stats %+v, warnings %v, parts %s",
		p.Round, p.Active, *p.Stats, p.Warnings, describeParts(p.Parts))
}

func describeParts(parts []*sluice.Part) string {
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, "[part %d round %d %s %d reqs status %q collected %v err %q] ", p.Number, p.Round, p.Model, p.Requests, p.Status, p.Collected, p.Error)
	}
	return b.String()
}

func done(p *batch.Progress) bool { return p.Done }

// outputLine is one line of a job's output, decoded.
type outputLine = testutil.OutputLine

// output reads the job's output in the order it is written.
func (c *client) output(t *testing.T) []outputLine {
	t.Helper()
	var buf bytes.Buffer
	if _, err := sluice.WriteOutput(context.Background(), c.st, c.job.ID, &buf, nil); err != nil {
		t.Fatal(err)
	}
	return testutil.DecodeOutput(t, buf.Bytes())
}

// checkOutput checks that the output has every custom_id exactly once, in input order,
// each done one answered with its own prompt, and returns the lines by custom_id.
func (c *client) checkOutput(t *testing.T) map[string]outputLine {
	t.Helper()
	out := c.output(t)
	if len(out) != len(c.ids) {
		t.Fatalf("output has %d lines, want %d", len(out), len(c.ids))
	}
	byID := map[string]outputLine{}
	for i, o := range out {
		if o.Custom() != c.ids[i] {
			t.Fatalf("output line %d is %s, want %s (input order)", i+1, o.Custom(), c.ids[i])
		}
		if o.Response != nil && o.Response.StatusCode == 200 && !bytes.Contains(o.Response.Body, []byte(o.Custom())) {
			t.Errorf("%s was answered with another request's answer: %s", o.Custom(), o.Response.Body)
		}
		byID[o.Custom()] = o
	}
	return byID
}
