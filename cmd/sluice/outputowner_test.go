package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/report"
)

// TestResumeKeepsAnotherJobsOutput: job A writes out.jsonl, then job B (another input)
// writes the same out.jsonl. Resuming A, or running A's command again, must not overwrite
// B's results unless told to.
func TestResumeKeepsAnotherJobsOutput(t *testing.T) {
	dir := t.TempDir()
	out, store := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "s.db")
	inputA := writeRequests(t, dir, 30)
	inputB := writeFile(t, dir, "b.jsonl", `{"custom_id":"b1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ask b1"}],"max_tokens":20}}`+"\n")
	jobOf := func(res cliResult) string {
		t.Helper()
		var rep report.Job
		if res.code != exitOK {
			t.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Job
	}
	common := []string{"-o", out, "--sim", "--store", store, "--progress", "none", "--json"}
	jobA := jobOf(runCLI(t, nil, append([]string{"run", inputA}, common...)...))
	jobB := jobOf(runCLI(t, nil, append([]string{"run", inputB}, common...)...))
	if jobA == jobB {
		t.Fatalf("one job %s for two inputs", jobA)
	}
	resultsB, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	keptB := func(how string) {
		t.Helper()
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, resultsB) {
			t.Fatalf("%s overwrote job %s's results", how, jobB)
		}
	}

	for _, args := range [][]string{
		{"resume", jobA, "--store", store, "--progress", "none"},
		append([]string{"run", inputA}, common...),
	} {
		res := runCLI(t, nil, args...)
		if res.code != exitUsage {
			t.Fatalf("%v: exit %d, want %d\n%s", args[:2], res.code, exitUsage, res.stderr)
		}
		for _, want := range []string{jobB, out, "-o OTHER", "--force-output"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("%v: stderr does not name %q:\n%s", args[:2], want, res.stderr)
			}
		}
		keptB(args[0])
	}

	// On a terminal the user is asked; "n" keeps the file.
	ask := func(answer string, args ...string) cliResult {
		var stdout, stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(answer), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" },
			interrupts: make(chan os.Signal), stdinTerminal: true}
		return cliResult{code: execute(context.Background(), e, args), stdout: stdout.String(), stderr: stderr.String()}
	}
	resume := []string{"resume", jobA, "--store", store, "--progress", "none"}
	if res := ask("n\n", resume...); res.code != exitUsage || !strings.Contains(res.stderr, "overwrite it? [y/N]") {
		t.Fatalf("answered n: exit %d\n%s", res.code, res.stderr)
	}
	keptB("resume answered n")

	// Elsewhere, or forced, job A writes its results.
	other := filepath.Join(dir, "other.jsonl")
	if res := runCLI(t, nil, "resume", jobA, "--store", store, "--progress", "none", "-o", other); res.code != exitOK {
		t.Fatalf("resume -o OTHER: exit %d\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, other), 30)
	keptB("resume -o OTHER")
	if res := runCLI(t, nil, append(resume, "--force-output")...); res.code != exitOK {
		t.Fatalf("resume --force-output: exit %d\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), 30)
	// Now A wrote it last: running B's command again is refused in turn.
	if res := runCLI(t, nil, append([]string{"run", inputB}, common...)...); res.code != exitUsage || !strings.Contains(res.stderr, jobA) {
		t.Fatalf("B after A took the file back: exit %d\n%s", res.code, res.stderr)
	}
	// A job rewriting its own file is not asked.
	if res := runCLI(t, nil, resume...); res.code != exitOK {
		t.Fatalf("A again: exit %d\n%s", res.code, res.stderr)
	}
	// Nor is it when the newer job with the same output never ran (declined at --confirm-cost).
	inputC := writeFile(t, dir, "c.jsonl", strings.ReplaceAll(string(mustRead(t, inputB)), "b1", "c1"))
	if res := runCLI(t, nil, append([]string{"run", inputC, "--confirm-cost", "0.000000001"}, common...)...); res.code != exitUsage {
		t.Fatalf("declined run: exit %d\n%s", res.code, res.stderr)
	}
	if res := runCLI(t, nil, resume...); res.code != exitOK {
		t.Fatalf("A after a job that never ran: exit %d\n%s", res.code, res.stderr)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
