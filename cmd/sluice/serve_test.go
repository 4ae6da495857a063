package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
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
	dir := t.TempDir()
	cfg := writeFile(t, dir, "serve.yaml", `upstreams:
  - name: fast
    base_url: sim
    concurrency: 8
    models: [gpt-4o-mini]
  - name: other
    base_url: sim
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
	deadline := time.Now().Add(30 * time.Second)
	for b.Status != openai.BatchStatusCompleted {
		if time.Now().After(deadline) || b.Status == openai.BatchStatusFailed {
			t.Fatalf("batch %s: %+v", b.Status, b.Errors)
		}
		time.Sleep(10 * time.Millisecond) // polling is the client protocol
		if b, err = c.Batches.Get(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
	}
	if b.RequestCounts.Completed != 2 || b.OutputFileID == "" {
		t.Errorf("completed batch: %+v", b)
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
