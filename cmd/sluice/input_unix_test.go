//go:build unix

package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunReadsFIFO: on main a FIFO hung (it was opened twice: once to fingerprint it,
// once to read it, and the second open waited for a writer that had gone).
func TestRunReadsFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "requests.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	const n = 500
	wrote := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			wrote <- err
			return
		}
		_, err = io.WriteString(w, requestLines(n))
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		wrote <- err
	}()
	out := filepath.Join(dir, "out.jsonl")
	res := runBounded(t, time.Minute, nil, "run", fifo, "-o", out, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none")
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), n)
}

// TestInterruptWhileWaitingForFIFO: on main a FIFO with no writer hung and ignored
// SIGTERM.
func TestInterruptWhileWaitingForFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "requests.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	interrupts := make(chan os.Signal, 1)
	interrupts <- syscall.SIGTERM
	res := runCLIStdin(t, nil, interrupts, "run", fifo, "-o", filepath.Join(dir, "out.jsonl"), "--sim", "--store", filepath.Join(dir, "s.db"))
	if res.code != exitInterrupted || !strings.Contains(res.stderr, "nothing was sent") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
}
