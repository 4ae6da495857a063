package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/sluice-llm/sluice"
)

// registerRetryFailed adds --retry-failed to run and resume.
func (f *runFlags) registerRetryFailed(fs *pflag.FlagSet) {
	fs.BoolVar(&f.retryFailed, "retry-failed", false, "send the job's failed requests again (after a provider's outage, say); done requests are kept")
}

// checkRetryFailed refuses --retry-failed where it is not supported.
func (f *runFlags) checkRetryFailed(o jobOptions) error {
	if f.retryFailed && o.Mode != modeOnline && o.Mode != "" {
		return usageError("--retry-failed works on online jobs; this job runs in %s mode: run its failed requests online with sluice run INPUT --retry-failed --new, or through sluice batch", o.Mode)
	}
	return nil
}

// retryFailed returns the job's failed requests to pending, so that the run sends them
// again; it is called holding the job's lock.
func retryFailed(ctx context.Context, e *env, st sluice.Store, job *sluice.Job) error {
	rf, ok := st.(sluice.FailedRetrier)
	if !ok {
		return usageError("--retry-failed: this store cannot retry failed requests")
	}
	n, err := rf.RetryFailed(ctx, job.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(e.stderr, "job %s has no failed request to send again (lines that are not valid requests are never sent)\n", job.ID)
		return nil
	}
	fresh, err := st.Job(ctx, job.ID)
	if err != nil {
		return err
	}
	job.State, job.Error, job.UpdatedAt = fresh.State, fresh.Error, fresh.UpdatedAt
	fmt.Fprintf(e.stderr, "job %s: sending %d failed requests again; done requests are kept\n", job.ID, n)
	return nil
}
