package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/sluice-llm/sluice"
)

// runCLIStdin is runCLI with stdin and the interrupts channel given.
func runCLIStdin(t *testing.T, stdin io.Reader, interrupts chan os.Signal, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	if interrupts == nil {
		interrupts = make(chan os.Signal)
	}
	e := &env{stdin: stdin, stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, interrupts: interrupts}
	code := execute(context.Background(), e, args)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// runBounded runs sluice in-process and fails the test if it has not ended within limit:
// on main these inputs made sluice run for ever.
func runBounded(t *testing.T, limit time.Duration, stdin io.Reader, args ...string) cliResult {
	t.Helper()
	done := make(chan cliResult, 1)
	go func() { done <- runCLIStdin(t, stdin, nil, args...) }()
	select {
	case res := <-done:
		return res
	case <-time.After(limit):
		t.Fatalf("sluice %v still running after %s", args, limit)
		return cliResult{}
	}
}

func requestLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"r%05d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ask r%05d"}],"max_tokens":20}}`+"\n", i+1, i+1)
	}
	return b.String()
}

// TestPipedInputLosesNoLine pipes a file into a real sluice process, as
// `cat file | sluice run /dev/stdin` does: on main it ran 1,830 of 2,000 lines (the
// input's first 64 KiB were read to fingerprint it, then lost), and 0 of 3.
func TestPipedInputLosesNoLine(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		arg string
		n   int
	}{{"/dev/stdin", 2000}, {"/dev/stdin", 3}, {"-", 2000}} {
		t.Run(fmt.Sprintf("%s %d lines", tt.arg, tt.n), func(t *testing.T) {
			dir := t.TempDir()
			out, store := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "s.db")
			run := func() (string, error) {
				cmd := exec.Command(exe, "run", tt.arg, "-o", out, "--sim", "--store", store, "--progress", "none")
				cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
				cmd.Stdin = strings.NewReader(requestLines(tt.n))
				var stderr strings.Builder
				cmd.Stderr = &stderr
				err := cmd.Run()
				return stderr.String(), err
			}
			if stderr, err := run(); err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			checkResults(t, readResults(t, out), tt.n)
			// The same stream again is the same job, read from its spooled copy.
			stderr, err := run()
			if err != nil || !strings.Contains(stderr, "already complete") {
				t.Fatalf("piped again: %v\n%s", err, stderr)
			}
			spooled, err := filepath.Glob(filepath.Join(dir, "spool", "*.jsonl"))
			if err != nil || len(spooled) != 1 {
				t.Fatalf("spool holds %v, %v; want one copy", spooled, err)
			}
		})
	}
}

func TestStdinNeedsAnOutputFile(t *testing.T) {
	dir := t.TempDir()
	res := runCLIStdin(t, strings.NewReader(requestLines(2)), nil, "run", "-", "--sim", "--store", filepath.Join(dir, "s.db"))
	if res.code != exitUsage || !strings.Contains(res.stderr, "name the output file with -o") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestInterruptWhileSpooling stops a run whose pipe never ends: exit 5, nothing sent.
func TestInterruptWhileSpooling(t *testing.T) {
	dir := t.TempDir()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	line := requestLines(1)
	wrote := make(chan struct{})
	writerDone := make(chan struct{})
	go func() { // an endless stream, until the reader is gone
		defer close(writerDone)
		defer pw.Close()
		for i := 0; ; i++ {
			if _, err := io.WriteString(pw, strings.Replace(line, "r00001", fmt.Sprintf("x%07d", i), 2)); err != nil {
				return
			}
			if i == 1000 {
				close(wrote)
			}
		}
	}()
	interrupts := make(chan os.Signal, 1)
	done := make(chan cliResult, 1)
	go func() {
		done <- runCLIStdin(t, pr, interrupts, "run", "-", "-o", filepath.Join(dir, "out.jsonl"), "--sim", "--store", filepath.Join(dir, "s.db"))
	}()
	<-wrote
	interrupts <- os.Interrupt
	res := <-done
	pr.Close()
	<-writerDone
	if res.code != exitInterrupted || !strings.Contains(res.stderr, "nothing was sent") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "spool", "*")); len(left) != 0 {
		t.Errorf("spool left behind: %v", left)
	}
}

// TestEndlessDevicesAreRefused: /dev/zero and /dev/urandom ran for ever on main.
// notText is the start of the error for an input that is not text.
var notText = regexp.MustCompile(`line [0-9]+: the input is not text`)

func TestEndlessDevicesAreRefused(t *testing.T) {
	for _, dev := range []string{"/dev/zero", "/dev/urandom"} {
		if _, err := os.Stat(dev); err != nil {
			t.Skip(err)
		}
		t.Run(dev, func(t *testing.T) {
			dir := t.TempDir()
			res := runBounded(t, time.Minute, nil, "run", dev, "-o", filepath.Join(dir, "out.jsonl"), "--sim", "--store", filepath.Join(dir, "s.db"))
			// /dev/urandom's first line may be text by chance (it starts with a newline 1 time
			// in 256): the error names the first line that is not.
			if res.code != exitUsage || !notText.MatchString(res.stderr) || dev == "/dev/zero" && !strings.Contains(res.stderr, "line 1: ") {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
		})
	}
}

func TestCompressedInput(t *testing.T) {
	const n = 300
	plain := requestLines(n)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := io.WriteString(zw, plain); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	zst := enc.EncodeAll([]byte(plain), nil)
	enc.Close()
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"requests.jsonl.gz", gz.Bytes()},
		{"requests.jsonl.zst", zst},
		{"gzip-with-no-extension", gz.Bytes()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			input := filepath.Join(dir, tt.name)
			if err := os.WriteFile(input, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			res := runCLI(t, nil, "run", input, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none")
			if res.code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
			}
			out := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(input, ".gz"), ".zst"), ".jsonl") + ".results.jsonl"
			checkResults(t, readResults(t, out), n)
		})
	}
	t.Run("xz is refused by name", func(t *testing.T) {
		dir := t.TempDir()
		input := writeFile(t, dir, "requests.jsonl", "\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46")
		res := runCLI(t, nil, "run", input, "--sim", "--store", filepath.Join(dir, "s.db"))
		if res.code != exitUsage || !strings.Contains(res.stderr, "the input is xz data") || !strings.Contains(res.stderr, "xz -d") {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
	})
}

// TestChangedInputBeyondTheHeadIsRefused: a same-size edit after the first 64 KiB was
// resumed silently on main, with the old prompts.
func TestChangedInputBeyondTheHeadIsRefused(t *testing.T) {
	dir := t.TempDir()
	lines := requestLines(1000) // about 170 KB
	if len(lines) < 2*headSize {
		t.Fatalf("input of %d bytes is too short for the test", len(lines))
	}
	input := writeFile(t, dir, "requests.jsonl", lines)
	args := []string{"run", input, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none"}
	if res := runCLI(t, nil, args...); res.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
	}
	edited := strings.Replace(lines, "ask r00900", "ask r00999", 1)
	if len(edited) != len(lines) || edited == lines {
		t.Fatal("the edit must keep the size")
	}
	writeFile(t, dir, "requests.jsonl", edited)
	res := runCLI(t, nil, args...)
	if res.code != exitUsage || !strings.Contains(res.stderr, "has changed since job") || !strings.Contains(res.stderr, "SHA-256") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestCSVGivenToRun: on main a CSV file ran as "invalid_request: 3", exit 3, naming no
// line and no better command.
func TestCSVGivenToRun(t *testing.T) {
	dir := t.TempDir()
	input := writeFile(t, dir, "docs.csv", "id,text\n1,\"hello, world\"\n2,second doc\n")
	res := runCLI(t, nil, "run", input, "--sim", "--store", filepath.Join(dir, "s.db"))
	if res.code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr %q", res.code, exitUsage, res.stderr)
	}
	for _, want := range []string{"line 1: not valid JSON", "line 3: not valid JSON", "sluice pipeline"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr %q does not say %q", res.stderr, want)
		}
	}
	// A JSONL file with a few bad lines (CSV, Latin-1, a NUL) still runs its good ones.
	input = writeRequests(t, dir, 3, "a,b,c", "{\"caf\xe9\":1}", "{\"a\x00\":1}")
	out := filepath.Join(dir, "out.jsonl")
	res = runCLI(t, nil, "run", input, "-o", out, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none")
	if res.code != exitFailed {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	for _, want := range []string{"3 lines of " + input + " are not valid requests", "\n  line 4: not valid JSON", "\n  line 5: not valid UTF-8", "\n  line 6: not valid JSON"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr does not name the bad lines (%q):\n%s", want, res.stderr)
		}
	}
	lines := readResults(t, out)
	checkResults(t, lines[:3], 3)
	for i, l := range lines[3:] {
		if l.Error == nil || l.Error.Code != "invalid_request" || !strings.Contains(l.Error.Message, fmt.Sprintf("line %d", 4+i)) {
			t.Errorf("result of line %d: %+v", 4+i, l)
		}
	}
}

func TestMaxLineBytes(t *testing.T) {
	dir := t.TempDir()
	long := `{"custom_id":"long","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}}`
	input := writeRequests(t, dir, 3, long)
	out := filepath.Join(dir, "out.jsonl")
	res := runCLI(t, nil, "run", input, "-o", out, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none", "--max-line-bytes", "4096")
	if res.code != exitFailed {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	lines := readResults(t, out)
	checkResults(t, lines[:3], 3)
	if l := lines[3]; l.Error == nil || !strings.Contains(l.Error.Message, "line 4: line is longer than 4096 bytes") {
		b, _ := json.Marshal(l)
		t.Errorf("the long line's result: %s", b)
	}
}

// TestResumeRefusesAChangedInput: resume read a changed file on main, mixing the lines of
// two versions in one job.
func TestResumeRefusesAChangedInput(t *testing.T) {
	dir := t.TempDir()
	lines := requestLines(1000)
	path := writeFile(t, dir, "requests.jsonl", lines)
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	var saved jobOptions
	if err := prepareInput(e, filepath.Join(dir, "s.db"), &saved, path); err != nil {
		t.Fatal(err)
	}
	job := &sluice.Job{ID: "job_x", Ingested: 10}
	if err := checkResumeInput(e, job, saved); err != nil {
		t.Fatalf("the unchanged file: %v", err)
	}
	writeFile(t, dir, "requests.jsonl", strings.Replace(lines, "ask r00999", "ask r00998", 1))
	err := checkResumeInput(e, job, saved)
	if err == nil || !strings.Contains(err.Error(), "has changed since job job_x started reading it (its SHA-256 differs)") {
		t.Fatalf("the changed file: %v", err)
	}
	job.IngestDone = true // every line is in the ledger: the file is not needed
	if err := checkResumeInput(e, job, saved); err != nil {
		t.Fatalf("a job read whole: %v", err)
	}
}

// BenchmarkPrepareInput measures the pass that hashes a whole input file before a run.
func BenchmarkPrepareInput(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "requests.jsonl")
	data := strings.Repeat(requestLines(1000), 200) // about 34 MB
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		b.Fatal(err)
	}
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var o jobOptions
		if err := prepareInput(e, filepath.Join(dir, "s.db"), &o, path); err != nil {
			b.Fatal(err)
		}
	}
}
