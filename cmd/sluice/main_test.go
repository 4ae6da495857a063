package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice/internal/testutil"
)

// TestMain doubles as the sluice binary: with SLUICE_TEST_MAIN set, the test executable
// runs the command line instead of the tests, so that crash tests can kill a real sluice
// process without building one.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// cli runs sluice in-process and returns its exit status and output.
type cliResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, envVars map[string]string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{
		stdin:  strings.NewReader(""),
		stdout: &out, stderr: &errb,
		getenv:     func(k string) string { return envVars[k] },
		interrupts: make(chan os.Signal),
	}
	code := execute(context.Background(), e, args)
	for line := range strings.Lines(errb.String()) {
		if strings.Count(line, "sluice: ") > 1 {
			t.Errorf("sluice %s: an error names sluice twice: %s", strings.Join(args, " "), line)
		}
	}
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// writeFile writes content to dir/name and returns its path (internal/testutil).
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	return testutil.WriteFile(t, dir, name, content)
}

// runKilledAt runs sluice in a process of its own (this test binary as main) with args
// and the variables env added to the environment, and kills it (SIGKILL) at killAt unless
// it exits first; killAt 0 lets it end. It says whether it killed it, its stderr, and
// otherwise how it exited. killAt is a random moment the caller picks: the point is to
// crash anywhere, so the timer is the test's input, not a wait for something.
func runKilledAt(t *testing.T, exe string, env, args []string, killAt time.Duration) (killed bool, stderr string, exitErr error) {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), "SLUICE_TEST_MAIN=1"), env...)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if killAt <= 0 {
		exitErr = <-exited
		return false, errb.String(), exitErr
	}
	timer := time.NewTimer(killAt)
	defer timer.Stop()
	select {
	case exitErr = <-exited:
		return false, errb.String(), exitErr
	case <-timer.C:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited //nolint:errcheck // killed on purpose
		return true, errb.String(), nil
	}
}
