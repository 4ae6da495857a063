package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-llm/sluice"
)

// checkOutputOwner refuses to let job write its output file when that file was last
// written by another job of the same store: resuming an old job must not overwrite a
// newer job's results. The owner is the job, among those writing to the same path, that
// was updated last. --force-output, or a "y" on a terminal, lets it overwrite the file.
func checkOutputOwner(ctx context.Context, e *env, f *runFlags, st sluice.Store, job *sluice.Job, o jobOptions) error {
	if o.Output == "" {
		return nil
	}
	if f.forceOutput {
		return claimOutput(ctx, st, job, o)
	}
	if _, err := os.Stat(o.Output); errors.Is(err, fs.ErrNotExist) {
		return claimOutput(ctx, st, job, o)
	}
	owner, err := outputOwner(ctx, st, o.Output, job.ID)
	if err != nil {
		return err
	}
	if owner == nil || owner.ID == job.ID {
		return claimOutput(ctx, st, job, o)
	}
	what := fmt.Sprintf("%s holds the results of job %s (%s %s); job %s would overwrite them",
		o.Output, owner.ID, owner.State, owner.UpdatedAt.Local().Format("2006-01-02 15:04"), job.ID)
	if !e.stdinTerminal {
		return usageError("%s: write elsewhere with -o OTHER, or pass --force-output to overwrite it", what)
	}
	fmt.Fprintf(e.stderr, "%s\noverwrite it? [y/N] ", what)
	answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return usageError("not run: %s is kept; write elsewhere with -o OTHER", o.Output)
	}
	return claimOutput(ctx, st, job, o)
}

// claimOutput makes job the last writer of its recorded output file, by touching its
// UpdatedAt, when it is about to write that file: a job given -o OTHER claims nothing, as
// the store keeps the path it was started with.
func claimOutput(ctx context.Context, st sluice.Store, job *sluice.Job, o jobOptions) error {
	saved, err := decodeOptions(job)
	if err != nil {
		return err
	}
	if filepath.Clean(saved.Output) != filepath.Clean(o.Output) {
		return nil
	}
	return st.UpdateJob(ctx, job)
}

// outputOwner returns the job that writes to output and was updated last, among self and
// the jobs with requests in the ledger, or nil.
func outputOwner(ctx context.Context, st sluice.Store, output, self string) (*sluice.Job, error) {
	jobs, err := st.Jobs(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("output owner: %w", err)
	}
	output = filepath.Clean(output)
	var owner *sluice.Job
	for _, j := range jobs {
		if j.Ingested == 0 && j.ID != self {
			continue // it has no result to lose: a job declined at --confirm-cost, say
		}
		saved, err := decodeOptions(j)
		if err != nil || saved.Output == "" || filepath.Clean(saved.Output) != output {
			continue // a job whose options cannot be read claims no file
		}
		if owner == nil || j.UpdatedAt.After(owner.UpdatedAt) {
			owner = j
		}
	}
	return owner, nil
}
