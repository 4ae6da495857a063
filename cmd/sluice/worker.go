package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/storeurl"
)

// sharedLease is the lease of runs on a store that many processes share: short, so that
// the process that runs a job notices soon (a quarter of it) when other workers have
// finished its last requests.
const sharedLease = 12 * time.Second

// defaultWorkerPoll is how often a worker looks for work when it has none.
const defaultWorkerPoll = time.Second

// workerFlags are the flags of sluice worker.
type workerFlags struct {
	store       string
	job         string
	follow      bool
	poll        time.Duration
	concurrency int
	prices      string
	grace       time.Duration
	observe     observeFlags // --metrics-addr, --log-level (observe.go)
}

func newWorkerCmd(e *env) *cobra.Command {
	f := &workerFlags{}
	cmd := &cobra.Command{
		Use:   "worker --store postgres://…",
		Short: "Work the running jobs of a PostgreSQL store, beside the sluice run that started them",
		Long: `Worker joins the running jobs of a PostgreSQL store and sends their pending requests, with
the settings each job was started with (sluice run saved them), except the API key: each
worker reads the key from its own environment (the variable the job names, OPENAI_API_KEY
by default). Start any number of workers, on any machine: they share each job's requests
(claims under leases) and its rate limits (n live workers each take 1/n of them).

Without --follow a worker stops when no running job has requests left to send; with it, it
waits for new jobs. --job restricts it to one job. The process that ran "sluice run"
writes the output file once every request is final, whoever sent them. A worker that dies
loses nothing: its requests go back to pending when its heartbeats stop.`,
		Example: `  sluice worker --store postgres://sluice@db.internal/sluice
  sluice worker --store postgres://sluice@db.internal/sluice --job job_20260101_ab12cd34
  SLUICE_STORE=postgres://sluice@db.internal/sluice sluice worker --follow`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd, e, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.store, "store", "", "the PostgreSQL store the jobs are in (default $SLUICE_STORE)")
	fs.StringVar(&f.job, "job", "", "work this job only")
	fs.BoolVar(&f.follow, "follow", false, "keep waiting for new jobs when there is no work")
	fs.DurationVar(&f.poll, "poll", defaultWorkerPoll, "how often to look for work when there is none")
	fs.IntVar(&f.concurrency, "concurrency", 0, "requests in flight at once in this worker (default: the job's)")
	fs.StringVar(&f.prices, "prices", "", "a prices file overriding the built-in table (for --max-cost)")
	fs.DurationVar(&f.grace, "grace", defaultGrace, "on Ctrl-C, how long requests in flight may finish before they are cut off")
	f.observe.register(fs)
	return cmd
}

// runWorker works jobs until there are none left (or, with --follow, until Ctrl-C).
func runWorker(cmd *cobra.Command, e *env, f *workerFlags) error {
	if f.poll <= 0 || f.concurrency < 0 {
		return usageError("--poll must be positive and --concurrency must not be negative")
	}
	ctx := cmd.Context()
	loc, err := storeLocation(e, f.store)
	if err != nil {
		return err
	}
	if loc.Kind != storeurl.Postgres {
		return usageError("store %s: workers share jobs through a PostgreSQL store (--store postgres://… or $SLUICE_STORE); a SQLite store is run by one sluice run at a time", loc)
	}
	st, where, err := openLocation(ctx, loc)
	if err != nil {
		return err
	}
	defer st.Close()
	reg, ok := st.(sluice.WorkerRegistry)
	if !ok {
		return fmt.Errorf("store %s keeps no workers", where)
	}
	m, stopMetrics, err := startMetrics(e, f.observe.metricsAddr) // one server for every job
	if err != nil {
		return err
	}
	defer stopMetrics()
	f.observe.metrics = m
	in := newInterrupt(ctx, e, f.grace, drainRuns, "")
	defer in.stop()
	w := &worker{e: e, f: f, st: st, reg: reg, skip: map[string]bool{}}
	for {
		job, err := w.next(in.ctx)
		if in.ctx.Err() != nil {
			return nil // stopped by Ctrl-C
		}
		if err != nil {
			return err
		}
		if job == nil {
			if !f.follow {
				fmt.Fprintln(e.stderr, "worker: no work left")
				return nil
			}
			select {
			case <-in.ctx.Done():
				return nil
			case <-in.draining:
				return nil
			case <-time.After(f.poll):
			}
			continue
		}
		err = w.work(in.ctx, job)
		switch {
		case errors.Is(err, sluice.ErrInterrupted) || in.ctx.Err() != nil:
			return nil // stopped by Ctrl-C: the job's other workers carry on
		case err != nil && f.job != "":
			return err
		case err != nil:
			fmt.Fprintf(e.stderr, "worker: job %s: %v; leaving it to the others\n", job.ID, err)
			w.skip[job.ID] = true
		}
	}
}

// worker is one sluice worker process.
type worker struct {
	e    *env
	f    *workerFlags
	st   store
	reg  sluice.WorkerRegistry
	skip map[string]bool // jobs this worker gave up on (its key was refused, say)
}

// next returns a running job with requests left to send (or input still being read), the
// newest first; nil when there is none.
func (w *worker) next(ctx context.Context) (*sluice.Job, error) {
	var jobs []*sluice.Job
	if w.f.job != "" {
		job, err := w.st.Job(ctx, w.f.job)
		if errors.Is(err, sluice.ErrNotFound) {
			return nil, usageError("no job %q in the store (sluice jobs lists them)", w.f.job)
		}
		if err != nil {
			return nil, err
		}
		jobs = []*sluice.Job{job}
	} else {
		var err error
		if jobs, err = w.st.Jobs(ctx, ""); err != nil {
			return nil, err
		}
	}
	for _, job := range jobs {
		if job.State != sluice.JobRunning || w.skip[job.ID] {
			continue
		}
		o, err := decodeOptions(job)
		if err != nil || (o.Mode != "" && o.Mode != modeOnline) {
			continue // Batch API jobs are watched by sluice batch, not worked
		}
		stats, err := w.st.Stats(ctx, job.ID)
		if err != nil {
			return nil, err
		}
		if stats.Pending > 0 || !job.IngestDone {
			return job, nil
		}
	}
	return nil, nil
}

// work sends the job's requests until none is left to send, taking its share of the job's
// limits as one of its live workers.
func (w *worker) work(ctx context.Context, job *sluice.Job) error {
	o, err := decodeOptions(job)
	if err != nil {
		return err
	}
	if w.f.concurrency > 0 {
		o.Concurrency = w.f.concurrency
	}
	prices, err := loadPrices(w.f.prices)
	if err != nil {
		return err
	}
	rf := &runFlags{simConfig: demoSim(), observe: w.f.observe}
	eng, closeUp, err := newEngine(w.e, rf, workerStore{w.st}, o, prices, "")
	if err != nil {
		return err
	}
	defer closeUp()
	leave, err := eng.Join(ctx, w.reg, job.ID, 0)
	if err != nil {
		return err
	}
	defer leave()
	fmt.Fprintf(w.e.stderr, "worker %s: working job %s (concurrency %d)\n", eng.Owner(), job.ID, o.Concurrency)
	var done int64
	defer func() {
		fmt.Fprintf(w.e.stderr, "worker %s: leaving job %s: %d requests finished here\n", eng.Owner(), job.ID, done)
	}()
	for {
		fresh, err := w.st.Job(ctx, job.ID)
		if err != nil {
			return err
		}
		if fresh.State != sluice.JobRunning {
			return nil
		}
		before, err := w.st.Stats(ctx, job.ID)
		if err != nil {
			return err
		}
		if before.Pending == 0 && fresh.IngestDone {
			return nil
		}
		if before.Pending > 0 {
			opts, shareDone, err := shareBudget(ctx, w.e, eng, w.st, job.ID, o)
			if err != nil {
				return err
			}
			run, err := eng.Start(ctx, fresh, nil, append(opts, sluice.StopWhenIdle())...)
			if err != nil {
				shareDone()
				return err
			}
			left := w.followJob(ctx, run, job.ID)
			err = run.Wait()
			shareDone()
			if left() {
				return nil // the job was stopped by its own process: leave it
			}
			p := run.Progress()
			done += p.Done + p.Failed - before.Done - before.Failed
			if err != nil {
				return err
			}
			continue
		}
		// The input is still being read into the ledger: wait for more lines.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.f.poll):
		}
	}
}

// followJob stops run (a drain: requests in flight finish) once the job is no longer
// running: the process that ran it was interrupted, or the job was stopped on its budget.
// left, called after the run ended, stops following and reports whether it did so.
func (w *worker) followJob(ctx context.Context, run *sluice.Run, jobID string) (left func() bool) {
	var stopped atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.f.poll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-run.Done():
				return
			case <-t.C:
			}
			job, err := w.st.Job(ctx, jobID)
			if err == nil && job.State != sluice.JobRunning {
				stopped.Store(true)
				_ = run.Stop(context.WithoutCancel(ctx))
				return
			}
		}
	})
	return func() bool {
		close(done)
		wg.Wait()
		return stopped.Load()
	}
}

// workerStore is the store as a worker's runs see it. The process that ran the job says
// how it ended (interrupted, aborted, out of budget); a worker leaving, for whatever
// reason, changes nothing of the job but its state, when its run answered the last
// request: then the job is completed.
type workerStore struct{ store }

// UpdateJob records a job completed; any other update is the job's own process's to make.
func (w workerStore) UpdateJob(ctx context.Context, job *sluice.Job) error {
	if job.State != sluice.JobCompleted {
		return nil
	}
	fresh, err := w.Job(ctx, job.ID)
	if err != nil {
		return err
	}
	fresh.State, fresh.Error = sluice.JobCompleted, ""
	return w.store.UpdateJob(ctx, fresh)
}
