// Command sluice runs large numbers of LLM requests through OpenAI-compatible APIs,
// durably and within the provider's rate limits. Run "sluice --help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses. They are part of sluice's interface: scripts depend on them.
const (
	exitOK          = 0 // every request got a final output line, and all succeeded
	exitError       = 1 // sluice itself failed (I/O, store)
	exitUsage       = 2 // bad flags or arguments, unreadable input
	exitFailed      = 3 // the run finished, but some requests failed (see the errors file)
	exitAborted     = 4 // the run stopped on a fatal upstream error (rejected key, unknown model)
	exitInterrupted = 5 // the run was interrupted (Ctrl-C); resume it to finish
	exitBudget      = 6 // the run stopped before its budget (--max-cost, --max-tokens) would be crossed
)

// exitCodeError carries an exit status up to main.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitCodeError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// env is what a command needs from the process: its streams, environment and signals.
// Tests build their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// interrupts delivers Ctrl-C (SIGINT) and SIGTERM.
	interrupts <-chan os.Signal
	// isTerminal reports whether stdout is a terminal (for the progress display), and
	// stdinTerminal whether stdin is one (so a question can be asked).
	isTerminal    bool
	stdinTerminal bool
	// logFormat is --log-format: logText or logJSON.
	logFormat string
}

// The values of --log-format.
const (
	logText = "text"
	logJSON = "json"
)

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	e := &env{
		stdin: stdin, stdout: stdout, stderr: stderr,
		getenv:     os.Getenv,
		interrupts: sigs,
		isTerminal: isTerminal(stdout),

		stdinTerminal: isTerminalFile(stdin),
	}
	return execute(context.Background(), e, args)
}

// execute runs the command line args and returns the exit status.
func execute(ctx context.Context, e *env, args []string) int {
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	return exitStatus(e, root.ExecuteContext(ctx))
}

// exitStatus prints err, if any, and returns the exit status it carries: exitError for
// sluice's own failures (a full disk under the ledger, say).
func exitStatus(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if ec.err != nil && ec.code != exitFailed {
			printError(e.stderr, ec.err)
		}
		return ec.code
	}
	printError(e.stderr, err)
	if isFlagError(err) {
		return exitUsage
	}
	return exitError
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Run large numbers of LLM requests through OpenAI-compatible APIs, durably and within rate limits",
		Long: `sluice streams a JSONL file of requests (the OpenAI Batch API line format) through any
OpenAI-compatible upstream with a concurrency cap, RPM and TPM limits learned from the
provider's headers, retries that honour Retry-After, a circuit breaker and a durable ledger:
a crash or Ctrl-C never loses or re-pays a finished request.

Exit status: 0 all requests succeeded; 1 sluice failed; 2 usage error; 3 some requests
failed; 4 run aborted (rejected key, unknown model); 5 interrupted (resume to finish);
6 budget exhausted (resume with a higher --max-cost or --max-tokens).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().Var(newChoice(&e.logFormat, logText, logText, logJSON), "log-format", "log records as text or json (slog's JSONHandler: one object a line, with job and custom_id)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitCodeError{code: exitUsage, err: err}
	})
	root.AddCommand(
		newRunCmd(e),
		newResumeCmd(e),
		newJobsCmd(e),
		newShowCmd(e),
		newExportCmd(e),
		newSimCmd(e),
		newDemoCmd(e),
		newPricesCmd(e),
		newBenchCmd(e),
		newServeCmd(e),
		newUICmd(e),
		newReportCmd(e),
		newEstimateCmd(e),
		newPipelineCmd(e),
		newBatchCmd(e),
		newWorkerCmd(e),
		newMigrateCmd(e),
	)
	return root
}

// isFlagError reports whether err is cobra's complaint about the command line.
func isFlagError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires ", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
