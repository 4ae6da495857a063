package http_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-llm/sluice"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/internal/testutil"
	sluiceopenai "github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

const (
	keyA = "sk-test-alice"
	keyB = "sk-test-bob"
)

// harness is a server over a store in a temporary directory and one simulator, which
// outlives restarts of the server.
type harness struct {
	t      *testing.T
	dir    string
	sim    *sim.Server
	cfg    service.Config
	models []string // models the upstream serves; nil: all
	conc   int
	// upName names the upstream ("": "sim").
	upName string
	// wrap, when set, wraps the transport to the simulator.
	wrap func(http.RoundTripper) http.RoundTripper
	// dead, once set, makes the server's store writes and sends fail, as if its process
	// had died (crash).
	dead *atomic.Bool
	// broken, when set, is a second upstream, listed first so that batches go to it,
	// that rejects every request's key.
	broken *sim.Server

	st  *sqlite.Store
	srv *sluicehttp.Server
	ts  *httptest.Server
}

func newHarness(t *testing.T, simCfg sim.Config, conc int) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), sim: sim.New(simCfg), conc: conc}
	t.Cleanup(h.sim.Close)
	t.Cleanup(h.stop)
	return h
}

// start opens the store and starts the server over it.
func (h *harness) start() {
	h.t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(h.dir, "sluice.db"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.dead = new(atomic.Bool)
	var tr http.RoundTripper = crashTransport{next: h.sim.Transport(), dead: h.dead}
	if h.wrap != nil {
		tr = h.wrap(tr)
	}
	store := crashStore{Store: st, dead: h.dead}
	up, err := sluiceopenai.New(sluiceopenai.Config{
		BaseURL:    "http://sim.sluice.invalid/v1",
		HTTPClient: &http.Client{Transport: tr},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	eng, err := sluice.New(store, up, sluice.Config{Concurrency: h.conc, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Store = store
	cfg.FilesDir = filepath.Join(h.dir, "files")
	cfg.Routes = []service.Route{{Name: cmp.Or(h.upName, "sim"), Models: h.models, Engine: eng}}
	if h.broken != nil {
		bup, err := sluiceopenai.New(sluiceopenai.Config{BaseURL: "http://broken.sluice.invalid/v1",
			HTTPClient: &http.Client{Transport: h.broken.Transport()}})
		if err != nil {
			h.t.Fatal(err)
		}
		beng, err := sluice.New(store, bup, sluice.Config{Concurrency: h.conc})
		if err != nil {
			h.t.Fatal(err)
		}
		cfg.Routes = append([]service.Route{{Name: "broken", Engine: beng}}, cfg.Routes...)
	}
	cfg.KeyHashes = []string{service.HashKey(keyA), service.HashKey(keyB)}
	svc, err := service.New(ctx, cfg)
	if err != nil {
		st.Close()
		h.t.Fatal(err)
	}
	srv := sluicehttp.NewServer(svc, cfg.Logger)
	h.st, h.srv, h.ts = st, srv, httptest.NewServer(srv.Handler())
}

// crash stops the server as SIGKILL would: from now on it writes nothing and sends
// nothing, and the answers of requests in flight are billed but lost.
func (h *harness) crash() {
	h.t.Helper()
	h.dead.Store(true)
	h.ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = h.srv.Close(ctx) // its writes fail: nothing it does now is kept
	if err := h.st.Close(); err != nil {
		h.t.Error(err)
	}
	h.srv, h.st, h.ts = nil, nil, nil
}

// stop closes the server (letting requests in flight finish) and the store.
func (h *harness) stop() {
	if h.srv == nil {
		return
	}
	h.ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Close(ctx); err != nil {
		h.t.Error(err)
	}
	if err := h.st.Close(); err != nil {
		h.t.Error(err)
	}
	h.srv, h.st, h.ts = nil, nil, nil
}

func (h *harness) client(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(h.ts.URL+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

// inputLines returns n chat requests with custom ids req-0 … req-(n-1).
func inputLines(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello %d"}],"max_tokens":5}}`, i, i)
	}
	return lines
}

func upload(t *testing.T, c openai.Client, lines []string) *openai.FileObject {
	t.Helper()
	f, err := c.Files.New(context.Background(), openai.FileNewParams{
		File:    openai.File(strings.NewReader(strings.Join(lines, "\n")+"\n"), "input.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeBatch,
	})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return f
}

func createBatch(t *testing.T, c openai.Client, fileID, window string) *openai.Batch {
	t.Helper()
	b, err := c.Batches.New(context.Background(), openai.BatchNewParams{
		InputFileID:      fileID,
		Endpoint:         openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow(window),
	})
	if err != nil {
		t.Fatalf("create batch: %v", err)
	}
	return b
}

// waitBatch polls the batch, as a client does, until cond holds or 30 s pass.
func waitBatch(t *testing.T, c openai.Client, id string, cond func(*openai.Batch) bool) *openai.Batch {
	t.Helper()
	return testutil.Poll(t, 30*time.Second, 10*time.Millisecond, func() (*openai.Batch, error) {
		return c.Batches.Get(context.Background(), id)
	}, cond)
}

func terminal(b *openai.Batch) bool {
	switch b.Status {
	case openai.BatchStatusCompleted, openai.BatchStatusFailed, openai.BatchStatusExpired, openai.BatchStatusCancelled:
		return true
	}
	return false
}

// outputLine is one line of an output or error file.
type outputLine = testutil.OutputLine

// download reads a file's lines through the SDK; "" reads nothing.
func download(t *testing.T, c openai.Client, id string) []outputLine {
	t.Helper()
	if id == "" {
		return nil
	}
	resp, err := c.Files.Content(context.Background(), id)
	if err != nil {
		t.Fatalf("download %s: %v", id, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.DecodeOutput(t, data)
}

// countIDs counts the custom ids of lines, failing on one seen twice.
func countIDs(t *testing.T, seen map[string]int, lines []outputLine) {
	t.Helper()
	for _, l := range lines {
		seen[l.Custom()]++
		if seen[l.Custom()] > 1 {
			t.Errorf("custom_id %s is in the output more than once", l.Custom())
		}
	}
}
