package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/internal/pgtest"
	"github.com/sluice-llm/sluice/sim"
)

// bgCLI is sluice running in-process in the background, stopped like a process by a
// signal on its interrupts.
type bgCLI struct {
	sigs   chan os.Signal
	done   chan struct{}
	code   int
	stderr *bytes.Buffer
}

func startCLI(t *testing.T, envVars map[string]string, args ...string) *bgCLI {
	t.Helper()
	c := &bgCLI{sigs: make(chan os.Signal, 2), done: make(chan struct{}), stderr: &bytes.Buffer{}}
	e := &env{
		stdin:  strings.NewReader(""),
		stdout: &bytes.Buffer{}, stderr: &lockedWriter{w: c.stderr},
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

// lockedWriter is a writer safe for the goroutines of one command.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
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
}

// TestWorkerNeedsPostgres: a worker on a SQLite store is a usage error that says why.
func TestWorkerNeedsPostgres(t *testing.T) {
	res := runCLI(t, nil, "worker", "--store", filepath.Join(t.TempDir(), "s.db"))
	if res.code != exitUsage || !strings.Contains(res.stderr, "PostgreSQL") {
		t.Errorf("exit %d, stderr %q; want a usage error naming PostgreSQL", res.code, res.stderr)
	}
}
