package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
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

// knownRate is the rate a hybrid job's online run is planned with: the --rpm, --tpm and
// --latency given, else what earlier runs learned of the upstream (batch.Rate.Learned).
// source says which, for the user.
func knownRate(ctx context.Context, st store, o jobOptions) (rate batch.Rate, source string, err error) {
	given := batch.Rate{RPM: o.RPM, TPM: o.TPM, Concurrency: o.Concurrency, Latency: durationOr(o.Latency, 0)}
	obs, ok, err := st.Rate(ctx, o.BaseURL)
	if err != nil {
		return given, "", err
	}
	var learned *sluice.RateObservation
	if ok {
		learned = &obs
	}
	rate, source = given.Learned(learned)
	return rate, source, nil
}

// newOnlineRun is the online run of a Batch API job's pending requests (batch.Online),
// with the engine sluice run would make and its progress display.
func newOnlineRun(ctx context.Context, e *env, f *runFlags, st store, job *sluice.Job, o jobOptions) (*batch.Online, error) {
	prices, err := loadPrices(f.prices)
	if err != nil {
		return nil, err
	}
	o.MaxAttempts += o.MaxRounds // each batch round a request was in counts as an attempt
	return batch.NewOnline(ctx, st, job, func(owner string) (*sluice.Engine, func(), error) {
		return newEngine(e, f, st, o, prices, owner)
	}, func(run *sluice.Run) func() { return startProgress(e, f, run) })
}

// execHybrid runs a job through the Batch API and online before its deadline, then writes
// its output and report.
func execHybrid(ctx context.Context, e *env, f *runFlags, st store, storeFile string, job *sluice.Job, o jobOptions) error {
	unlock, err := lockBatchJob(ctx, st, storeFile, job)
	if err != nil {
		return err
	}
	defer unlock()
	if err := checkOutputOwner(ctx, e, f, st, job, o); err != nil {
		return err
	}
	prices, err := loadPrices(f.prices)
	if err != nil {
		return err
	}
	deadline, err := time.Parse(time.RFC3339Nano, o.Deadline)
	if err != nil {
		return fmt.Errorf("job %s: its deadline: %w", job.ID, err)
	}
	if job.State == sluice.JobCompleted {
		fmt.Fprintf(e.stderr, "job %s is already complete: nothing is sent again\n", job.ID)
		return finishJob(ctx, e, f, st, job, o, prices, nil, nil)
	}
	r, err := newRunner(e, st, o)
	if err != nil {
		return err
	}
	if _, err := ingestJob(ctx, e, st, job, o); err != nil {
		return err
	}
	online, err := newOnlineRun(ctx, e, f, st, job, o)
	if err != nil {
		return err
	}
	defer online.Close()
	rate, source, err := knownRate(ctx, st, o)
	if err != nil {
		return err
	}
	plan := batch.Plan{
		Deadline: deadline, Poll: durationOr(o.Poll, batch.DefaultPoll), Reserve: durationOr(o.Reserve, batch.DefaultReserve), Rate: rate,
	}
	fmt.Fprintf(e.stderr, "hybrid job %s: through the Batch API, and online once the time left before %s is short (online rate: %s)\n",
		job.ID, deadline.Local().Format(time.DateTime), source)
	in := newInterrupt(ctx, e, f.grace, drainRuns, "")
	defer in.stop()
	runCtx := in.ctx
	last := ""
	runErr := r.RunHybrid(runCtx, job, plan, online.Run, func(ev batch.HybridEvent) {
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
	var ue *sluice.UpstreamError
	if errors.As(runErr, &ue) {
		runErr = fmt.Errorf("%w: %w", sluice.ErrAborted, runErr)
		job.Error = ue.Error()
	}
	if runErr == nil && time.Now().After(deadline) {
		fmt.Fprintf(e.stderr, "job %s finished %s after its deadline\n", job.ID, time.Since(deadline).Round(time.Second))
	}
	return finishJob(ctx, e, f, st, job, o, prices, online.Last(), runErr)
}
