package http_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/sim"
)

// logBuffer is a log the test reads while the server writes it.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{}, 1)} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until the log has a line containing s, and returns that line.
func (l *logBuffer) waitFor(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		for line := range strings.Lines(l.String()) {
			if strings.Contains(line, s) {
				return line
			}
		}
		select {
		case <-l.changed:
		case <-timeout:
			t.Fatalf("no log line with %q:\n%s", s, l.String())
		}
	}
}

// TestClientHangingUpIsNoError: a client that cuts its upload short and hangs up is
// logged at debug level, not as a server error.
func TestClientHangingUpIsNoError(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	log := newLogBuffer()
	h.cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.start()
	conn, err := net.Dial("tcp", h.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	part := "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n{\"custom_id\":"
	fmt.Fprintf(conn, "POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n%s", keyA, part)
	conn.Close()
	line := log.waitFor(t, "path=/v1/files")
	if !strings.Contains(line, "level=DEBUG") {
		t.Errorf("a client that hung up is logged as %s", line)
	}
}
