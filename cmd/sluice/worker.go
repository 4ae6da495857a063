package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/storeurl"
	"github.com/sluice-llm/sluice/worker"
)

// sharedLease is the lease of runs on a store that many processes share: short, so that
// the process that runs a job notices soon (a quarter of it) when other workers have
// finished its last requests.
const sharedLease = 12 * time.Second

// defaultWorkerPoll is how often a worker looks for work when it has none.
const defaultWorkerPoll = worker.DefaultPoll

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
	concurrency := map[string]int{} // of each job worked, for the user
	err = worker.Run(in.ctx, worker.Config{
		Store: st, Registry: reg, Job: f.job, Follow: f.follow, Poll: f.poll,
		Accept: func(job *sluice.Job) bool {
			o, err := decodeOptions(job)
			return err == nil && o.Mode == modeOnline // Batch API jobs are watched by sluice batch, not worked
		},
		Engine: func(job *sluice.Job, st worker.Store) (*sluice.Engine, func(), error) {
			o, err := workerOptions(job, f)
			if err != nil {
				return nil, nil, err
			}
			prices, err := loadPrices(f.prices)
			if err != nil {
				return nil, nil, err
			}
			concurrency[job.ID] = o.Concurrency
			rf := &runFlags{simConfig: demoSim(), observe: f.observe}
			return newEngine(e, rf, st, o, prices, "")
		},
		RunOptions: func(ctx context.Context, eng *sluice.Engine, job *sluice.Job) ([]sluice.RunOption, func(), error) {
			o, err := workerOptions(job, f)
			if err != nil {
				return nil, nil, err
			}
			return shareBudget(ctx, e, eng, st, job.ID, o)
		},
		OnEvent: func(ev worker.Event) {
			switch ev.Kind {
			case worker.Joined:
				fmt.Fprintf(e.stderr, "worker %s: working job %s (concurrency %d)\n", ev.Owner, ev.Job, concurrency[ev.Job])
			case worker.Left:
				fmt.Fprintf(e.stderr, "worker %s: leaving job %s: %d requests finished here\n", ev.Owner, ev.Job, ev.Done)
			case worker.Skipped:
				fmt.Fprintf(e.stderr, "worker: job %s: %v; leaving it to the others\n", ev.Job, ev.Err)
			case worker.Idle:
				fmt.Fprintln(e.stderr, "worker: no work left")
			}
		},
	}, in.draining)
	if errors.Is(err, worker.ErrNoJob) {
		return usageError("no job %q in the store (sluice jobs lists them)", f.job)
	}
	return err
}

// workerOptions are the settings a worker works job with: the job's own, with this
// worker's --concurrency.
func workerOptions(job *sluice.Job, f *workerFlags) (jobOptions, error) {
	o, err := decodeOptions(job)
	if err != nil {
		return o, err
	}
	if f.concurrency > 0 {
		o.Concurrency = f.concurrency
	}
	return o, nil
}
