package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/sqlite"
)

// parseDeadline reads --deadline: a duration from now ("6h") or a time (RFC 3339).
func parseDeadline(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usageError("--deadline must be in the future, got %s", s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError("--deadline wants a duration (6h) or a time (2026-11-25T09:00:00Z), got %q", s)
	}
	return t, nil
}

// durationOr is the Go duration s, or def when s is empty or not one.
func durationOr(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil {
		return d
	}
	return def
}

// onlineOwner is the owner of a Batch API job's online requests in the ledger: fixed, so
// that what a crashed run left in flight can be released by the next.
func onlineOwner(job *sluice.Job) string { return "online-" + job.ID }

// onlineRunner returns a function that runs the job's pending requests online until none
// is pending (the requests batches hold are left to them), with the run's progress
// display; the engine is made on the first call. closeFn stops its upstream.
func onlineRunner(ctx context.Context, e *env, f *runFlags, st *sqlite.Store, job *sluice.Job, o jobOptions) (run func(context.Context) error, closeFn func(), err error) {
	prices, err := loadPrices(f.prices)
	if err != nil {
		return nil, nil, err
	}
	if err := st.Release(ctx, job.ID, onlineOwner(job)); err != nil {
		return nil, nil, err
	}
	o.MaxAttempts += o.MaxRounds // each batch round a request was in counts as an attempt
	var (
		eng     *sluice.Engine
		closeUp = func() {}
	)
	run = func(ctx context.Context) error {
		if eng == nil {
			if eng, closeUp, err = newEngine(e, f, st, o, prices, onlineOwner(job)); err != nil {
				return err
			}
		}
		r, err := eng.Start(ctx, job, nil, sluice.StopWhenIdle())
		if err != nil {
			return err
		}
		stop := startProgress(e, f, r)
		err = r.Wait()
		stop()
		return err
	}
	return run, func() { closeUp() }, nil
}

// execHybrid runs a job through the Batch API and online before its deadline, then writes
// its output and report.
func execHybrid(ctx context.Context, e *env, f *runFlags, st *sqlite.Store, storeFile string, job *sluice.Job, o jobOptions) error {
	unlock, err := lockBatchJob(storeFile, job)
	if err != nil {
		return err
	}
	defer unlock()
	prices, err := loadPrices(f.prices)
	if err != nil {
		return err
	}
	deadline, err := time.Parse(time.RFC3339, o.Deadline)
	if err != nil {
		return fmt.Errorf("job %s: its deadline: %w", job.ID, err)
	}
	if job.State == sluice.JobCompleted {
		fmt.Fprintf(e.stderr, "job %s is already complete: nothing is sent again\n", job.ID)
		return finishJob(ctx, e, f, st, job, o, prices, nil)
	}
	r, err := newRunner(e, st, o)
	if err != nil {
		return err
	}
	if _, err := ingestJob(ctx, e, st, job, o); err != nil {
		return err
	}
	online, closeOnline, err := onlineRunner(ctx, e, f, st, job, o)
	if err != nil {
		return err
	}
	defer closeOnline()
	plan := batch.Plan{
		Deadline: deadline, Poll: durationOr(o.Poll, batch.DefaultPoll), Reserve: durationOr(o.Reserve, batch.DefaultReserve),
		Rate: batch.Rate{RPM: o.RPM, TPM: o.TPM, Concurrency: o.Concurrency, Latency: durationOr(o.Latency, batch.DefaultLatency)},
	}
	fmt.Fprintf(e.stderr, "hybrid job %s: through the Batch API, and online once the time left before %s is short\n",
		job.ID, deadline.Local().Format(time.DateTime))
	runCtx, stop := interruptible(ctx, e)
	defer stop()
	last := ""
	runErr := r.RunHybrid(runCtx, job, plan, online, func(ev batch.HybridEvent) {
		if ev.Switched {
			fmt.Fprintf(e.stderr, "%s going online: %s\n", time.Now().Format("15:04:05"), ev.Why)
		}
		if line := statusLine(ev.Progress); line != last {
			fmt.Fprintf(e.stderr, "%s %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		for _, w := range ev.Progress.Warnings {
			fmt.Fprintf(e.stderr, "  warning: %s\n", w)
		}
	})
	if errors.Is(runErr, context.Canceled) && ctx.Err() == nil {
		runErr = sluice.ErrInterrupted
	}
	if err := refreshJob(ctx, st, job); err != nil {
		return err
	}
	var ue *sluice.UpstreamError
	if errors.As(runErr, &ue) {
		runErr = fmt.Errorf("%w: %w", sluice.ErrAborted, runErr)
		job.Error = ue.Error()
	}
	if runErr == nil && time.Now().After(deadline) {
		fmt.Fprintf(e.stderr, "job %s finished %s after its deadline\n", job.ID, time.Since(deadline).Round(time.Second))
	}
	return finishJob(ctx, e, f, st, job, o, prices, runErr)
}

// refreshJob reloads the job's state, which the engine and the runner change.
func refreshJob(ctx context.Context, st *sqlite.Store, job *sluice.Job) error {
	j, err := st.Job(ctx, job.ID)
	if err != nil {
		return err
	}
	*job = *j
	return nil
}
