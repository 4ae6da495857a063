package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice/internal/testutil"
)

// waitBatch polls the batch id until it is completed, and fails the test if it fails
// or is still going after 30 s.
func waitBatch(t *testing.T, c *openai.Client, id string) *openai.Batch {
	t.Helper()
	b := testutil.Poll(t, 30*time.Second, 10*time.Millisecond, func() (*openai.Batch, error) {
		return c.Batches.Get(t.Context(), id)
	}, func(b *openai.Batch) bool {
		return b.Status == openai.BatchStatusCompleted || b.Status == openai.BatchStatusFailed
	})
	if b.Status != openai.BatchStatusCompleted {
		t.Fatalf("batch %s: %+v", b.Status, b.Errors)
	}
	return b
}

// inProcessServe is sluice serve running in the test's process.
type inProcessServe struct {
	log        *serveLog
	base       string
	interrupts chan os.Signal
	exited     chan int
}

// startServe runs sluice serve in process with the given client keys and flags
// (--listen is set), and stops it when the test ends.
func startServe(t *testing.T, keys string, args ...string) *inProcessServe {
	t.Helper()
	s := &inProcessServe{log: &serveLog{changed: make(chan struct{}, 1)}, interrupts: make(chan os.Signal, 1), exited: make(chan int, 1)}
	e := &env{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: s.log,
		getenv:     func(k string) string { return map[string]string{clientKeysEnv: keys}[k] },
		interrupts: s.interrupts,
	}
	go func() {
		s.exited <- execute(context.Background(), e, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...))
	}()
	t.Cleanup(func() {
		s.interrupts <- os.Interrupt
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop on an interrupt")
		}
	})
	s.base = s.log.waitListening(t, s.exited)
	return s
}
