package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
)

func TestVersion(t *testing.T) {
	res := runCLI(t, nil, "--version")
	if res.code != exitOK || !regexp.MustCompile(`^sluice \S+ \(commit \S+, go1\.\d+`).MatchString(res.stdout) {
		t.Errorf("--version: exit %d: %q", res.code, res.stdout)
	}
}

// Flags that a command cannot use are refused, not ignored, and hidden from --help.
func TestFlagsThatDoNothingAreRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "in.jsonl", "--progress", "fancy"}, `"fancy" is not one of auto, bar, log, none`},
		{[]string{"resume", "job_x", "--new"}, "does not take --new"},
		{[]string{"demo", "--base-url", "http://127.0.0.1:1/v1"}, "does not take --base-url"},
		{[]string{"demo", "--sim"}, "does not take --sim"},
	} {
		res := runCLI(t, nil, tc.args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: exit %d: %s", tc.args, res.code, res.stderr)
		}
	}
	for _, tc := range []struct {
		args   []string
		hidden []string
	}{
		{[]string{"demo", "--help"}, []string{"--base-url", "--api-key-env", "--sim "}},
		{[]string{"resume", "--help"}, []string{"--new"}},
		{[]string{"batch", "submit", "--help"}, []string{"--max-cost", "--max-tokens"}},
	} {
		res := runCLI(t, nil, tc.args...)
		for _, h := range tc.hidden {
			if strings.Contains(res.stdout, h) {
				t.Errorf("%v lists %s", tc.args, h)
			}
		}
	}
}

// The demo keeps its job where sluice show finds it, creates --dir, and ends with the
// next commands to try.
func TestDemoJobIsKept(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(t.TempDir(), "new", "demo")
	env := map[string]string{"XDG_DATA_HOME": data}
	res := runCLI(t, env, "demo", "--dir", dir, "-n", "40", "--progress", "none", "--json")
	if res.code != exitOK && res.code != exitFailed {
		t.Fatalf("demo: exit %d: %s", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "results.jsonl")); err != nil {
		t.Errorf("demo --dir: %v", err)
	}
	m := regexp.MustCompile(`sluice show (\S+)`).FindStringSubmatch(res.stderr)
	if m == nil || !strings.Contains(res.stderr, "sluice jobs") {
		t.Fatalf("demo does not end with the next commands:\n%s", res.stderr)
	}
	if show := runCLI(t, env, "show", m[1]); show.code != exitOK || !strings.Contains(show.stdout, m[1]) {
		t.Errorf("show %s after the demo: exit %d: %s %s", m[1], show.code, show.stdout, show.stderr)
	}
}

// An error names sluice once: package sluice's errors name it already and are printed as
// they are, with the context a command adds after them; the commands' own errors get the
// program's name.
func TestErrorPrefixNotRepeated(t *testing.T) {
	var b strings.Builder
	budget := fmt.Errorf("%w: spent $1 of $1", sluice.ErrBudgetExhausted)
	printError(&b, &exitCodeError{code: exitBudget, err: fmt.Errorf("%w; job j stopped", budget)})
	printError(&b, fmt.Errorf("%w: write ledger: disk full", sluice.ErrFailed))
	printError(&b, errors.New("no job \"x\""))
	want := "sluice: budget exhausted: spent $1 of $1; job j stopped\nsluice: run failed: write ledger: disk full\nsluice: no job \"x\"\n"
	if got := b.String(); got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}

// With no home directory for the default store, the demo keeps its store beside its
// files: the quick start works on a machine without $HOME.
func TestDemoWithoutHome(t *testing.T) {
	t.Setenv("HOME", "")
	dir := t.TempDir()
	res := runCLI(t, nil, "demo", "--dir", dir, "-n", "10", "--progress", "none")
	if res.code != exitOK && res.code != exitFailed {
		t.Fatalf("demo without $HOME: exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "--store "+filepath.Join(dir, "sluice.db")) {
		t.Errorf("the next commands do not name the demo's store:\n%s", res.stderr)
	}
}
