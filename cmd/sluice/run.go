package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/estimate"
	"github.com/sluice-llm/sluice/internal/gcpolicy"
	"github.com/sluice-llm/sluice/internal/ids"
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/tokens"
)

const simBaseURL = "sim:"

func newRunCmd(e *env) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run INPUT",
		Short: "Run a JSONL file of requests through an upstream",
		Long: `Run sends every request of INPUT (the OpenAI Batch API input format, one request per line)
to the upstream and writes one result line per request (the Batch API output format).

Running the same command again resumes the job: requests already done are never sent again.`,
		Example: `  export OPENAI_API_KEY=...
  sluice run requests.jsonl -o results.jsonl --base-url https://api.deepseek.com/v1 --concurrency 64
  sluice run requests.jsonl --sim          # against the built-in simulator, no key needed`,
		Args: exactArgs(1, "one input file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !gcpolicy.Chosen(e.getenv("GOGC"), e.getenv("GOMEMLIMIT")) {
				defer gcpolicy.Apply()()
			}
			o, err := f.newOptions(e, args[0])
			if err != nil {
				return err
			}
			if err := checkRequests(o); err != nil {
				return err
			}
			if err := f.applyMode(&o); err != nil {
				return err
			}
			if err := f.checkRetryFailed(o); err != nil {
				return err
			}
			st, path, err := openStore(cmd.Context(), e, f.store)
			if err != nil {
				return err
			}
			defer st.Close()
			job, err := findOrCreateJob(cmd.Context(), st, o, f.fresh)
			if err != nil {
				return err
			}
			if o.Mode == modeHybrid {
				if o, err = keepDeadline(e, job, o); err != nil {
					return err
				}
				return execHybrid(cmd.Context(), e, f, st, path, job, o)
			}
			if job.State != sluice.JobRunning || job.Ingested > 0 {
				fmt.Fprintf(e.stderr, "resuming job %s (%s)\n", job.ID, job.State)
			}
			if f.confirmCost > 0 && job.State != sluice.JobCompleted {
				if err := confirmCost(cmd.Context(), e, f, st, o.source(), false); err != nil {
					return err
				}
			}
			return execJob(cmd.Context(), e, f, st, path, job, o)
		},
	}
	f.register(cmd.Flags(), true)
	f.registerHybrid(cmd.Flags())
	f.registerRetryFailed(cmd.Flags())
	f.registerObserve(cmd.Flags())
	return cmd
}

// applyMode checks --mode and its flags and records them in o.
func (f *runFlags) applyMode(o *jobOptions) error {
	switch f.batch.mode {
	case "online", "":
		if f.batch.deadline != "" {
			return usageError("--deadline needs --mode hybrid")
		}
		return nil
	case modeHybrid:
	default:
		return usageError("--mode must be online or hybrid, got %q (sluice batch runs through the Batch API alone)", f.batch.mode)
	}
	if f.batch.deadline == "" {
		return usageError("--mode hybrid needs a --deadline (6h, or a time)")
	}
	deadline, err := parseDeadline(f.batch.deadline, time.Now())
	if err != nil {
		return err
	}
	if f.batch.reserve < 0 || f.batch.latency < 0 {
		return usageError("--reserve must not be negative and --latency must not be negative")
	}
	o.Mode, o.Deadline = modeHybrid, deadline.UTC().Format(time.RFC3339Nano)
	o.Poll, o.Reserve, o.Latency = f.batch.poll.every.String(), f.batch.reserve.String(), f.batch.latency.String()
	return f.batch.apply(o)
}

// keepDeadline keeps the deadline a hybrid job was started with when the same command
// runs again: a relative --deadline must not move with every run.
func keepDeadline(e *env, job *sluice.Job, o jobOptions) (jobOptions, error) {
	saved, err := decodeOptions(job)
	if err != nil || saved.Deadline == "" || saved.Deadline == o.Deadline {
		return o, err
	}
	o.Deadline = saved.Deadline
	fmt.Fprintf(e.stderr, "job %s keeps the deadline it started with: %s\n", job.ID, o.Deadline)
	return o, nil
}

func newResumeCmd(e *env) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "resume JOB",
		Short: "Carry on with an interrupted or aborted job",
		Long: `Resume continues a job with the settings it was started with (flags given here override
them). Requests already done are never sent again.`,
		Args: exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, path, err := openStore(cmd.Context(), e, f.store)
			if err != nil {
				return err
			}
			defer st.Close()
			job, err := findJob(cmd.Context(), st, path, args[0])
			if err != nil {
				return err
			}
			saved, err := decodeOptions(job)
			if err != nil {
				return err
			}
			o := f.merge(cmd.Flags(), saved)
			if err := o.validate(); err != nil {
				return err
			}
			if err := checkResumeInput(e, job, saved); err != nil {
				return err
			}
			if err := f.checkRetryFailed(o); err != nil {
				return err
			}
			switch o.Mode {
			case modeBatch:
				return usageError("job %s runs through the Batch API: sluice batch watch %s", job.ID, job.ID)
			case modeHybrid:
				return execHybrid(cmd.Context(), e, f, st, path, job, o)
			}
			return execJob(cmd.Context(), e, f, st, path, job, o)
		},
	}
	f.register(cmd.Flags(), true)
	refuseFlags(cmd, "resume carries on an existing job; sluice run --new starts a new one", "new")
	f.registerRetryFailed(cmd.Flags())
	f.registerObserve(cmd.Flags())
	return cmd
}

// newOptions builds a run's options from its flags and input path.
func (f *runFlags) newOptions(e *env, input string) (jobOptions, error) {
	o := f.opts
	if err := prepareInput(e, f.store, &o, input); err != nil {
		return o, err
	}
	if o.Output == "" {
		o.Output = defaultOutput(o.Input)
	}
	var err error
	if o.Output, err = filepath.Abs(o.Output); err != nil {
		return o, usageError("output: %v", err)
	}
	if o.Output == o.Input {
		return o, usageError("the output file must not be the input file")
	}
	if o.Errors != "" {
		if o.Errors, err = filepath.Abs(o.Errors); err != nil {
			return o, usageError("errors file: %v", err)
		}
	}
	switch {
	case o.Sim:
		o.BaseURL = simBaseURL
	case o.BaseURL == "":
		o.BaseURL = e.getenv("OPENAI_BASE_URL")
		if o.BaseURL == "" {
			o.BaseURL = defaultBaseURL
		}
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	o.Timeout = f.timeout.String()
	if f.observe.streamIdle != 0 {
		o.StreamIdleTimeout = f.observe.streamIdle.String()
	}
	return o, o.validate()
}

// confirmCost estimates the input and, when its worst case is above --confirm-cost, asks
// before anything is sent: on a terminal it asks; elsewhere only --yes lets it run.
func confirmCost(ctx context.Context, e *env, f *runFlags, st store, input string, batchPrices bool) error {
	prices, err := loadPrices(f.prices)
	if err != nil {
		return err
	}
	history, err := st.ModelHistory(ctx)
	if err != nil {
		return err
	}
	rep, err := estimateInput(ctx, input, estimate.Config{Prices: prices, History: history})
	if err != nil {
		return err
	}
	worst, how := rep.CostUSD.Online, "online"
	if batchPrices {
		worst, how = rep.CostUSD.Batch, "through the Batch API"
	}
	if worst <= f.confirmCost {
		return nil
	}
	what := fmt.Sprintf("%s: %d requests, %d input tokens, up to %d output tokens: up to $%.2f %s (above --confirm-cost $%.2f)",
		input, rep.Requests, rep.InputTokens, rep.OutputTokensBound, worst, how, f.confirmCost)
	if len(rep.UnpricedModels) > 0 {
		what += fmt.Sprintf("; no price for %s", strings.Join(rep.UnpricedModels, ", "))
	}
	switch {
	case f.yes:
		fmt.Fprintln(e.stderr, what+"; --yes given, running")
		return nil
	case !e.stdinTerminal:
		return usageError("%s; pass --yes to run it anyway", what)
	}
	fmt.Fprintf(e.stderr, "%s\nrun it? [y/N] ", what)
	answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return usageError("not run: the estimate was not confirmed")
	}
	return nil
}

// findOrCreateJob finds the job this command ran before, or starts a new one.
func findOrCreateJob(ctx context.Context, st sluice.Store, o jobOptions, fresh bool) (*sluice.Job, error) {
	fp := o.fingerprint()
	if !fresh {
		jobs, err := st.Jobs(ctx, fp)
		if err != nil {
			return nil, err
		}
		if len(jobs) > 0 {
			job := jobs[0]
			saved, err := decodeOptions(job)
			if err != nil {
				return nil, err
			}
			if why := inputChanged(saved, o); why != "" {
				return nil, usageError("%s has changed since job %s ran it (%s): run with --new to start a new job, or restore the file to resume", o.Input, job.ID, why)
			}
			opts, err := json.Marshal(o)
			if err != nil {
				return nil, err
			}
			job.Options = opts
			return job, nil
		}
	}
	opts, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	job := &sluice.Job{
		ID:          newJobID(),
		State:       sluice.JobRunning,
		Input:       o.Input,
		Fingerprint: fp,
		Options:     opts,
	}
	if err := st.CreateJob(ctx, job); err != nil {
		return nil, err
	}
	return job, nil
}

func newJobID() string {
	return "job_" + time.Now().UTC().Format("20060102") + "_" + ids.Hex(4)
}

// execJob runs a job to its end, writes its output and report, and returns the error
// that carries the exit status.
func execJob(ctx context.Context, e *env, f *runFlags, st store, storeFile string, job *sluice.Job, o jobOptions) error {
	unlock, err := lockStoreJob(ctx, st, storeFile, job.ID)
	if errors.Is(err, errJobLocked) {
		return usageError("job %s: %v", job.ID, err)
	}
	if err != nil {
		return err
	}
	defer unlock()
	if err := checkOutputOwner(ctx, e, f, st, job, o); err != nil {
		return err
	}
	// This process holds the job: requests a crashed run left in flight go back to pending.
	if err := releaseOrphans(ctx, st, job.ID); err != nil {
		return err
	}
	if f.retryFailed {
		if err := retryFailed(ctx, e, st, job); err != nil {
			return err
		}
	}
	prices, err := loadPrices(f.prices)
	if err != nil {
		return err
	}
	if job.State == sluice.JobCompleted {
		fmt.Fprintf(e.stderr, "job %s is already complete: nothing is sent again\n", job.ID)
		return finishJob(ctx, e, f, st, job, o, prices, nil, nil)
	}

	eng, closeUp, err := newEngine(e, f, st, o, prices, "")
	if err != nil {
		return err
	}
	defer closeUp()
	if reg, ok := st.(sluice.WorkerRegistry); ok {
		// Workers may share the job (sluice worker): this run is one of them.
		leave, err := eng.Join(ctx, reg, job.ID, 0)
		if err != nil {
			return err
		}
		defer leave()
	}
	var src sluice.Source
	if !job.IngestDone {
		in, err := openSource(o)
		if err != nil {
			return err
		}
		defer in.Close()
		bad := &badLines{src: newSource(in, o, tokens.Default())}
		defer bad.print(e.stderr, o.Input)
		src = bad
	}

	in := newInterrupt(ctx, e, f.grace, drainRuns, "")
	defer in.stop()
	opts, shareDone, err := shareBudget(ctx, e, eng, st, job.ID, o)
	if err != nil {
		return err
	}
	defer shareDone()
	run, err := eng.Start(in.ctx, job, src, opts...)
	if err != nil {
		return err
	}
	stopProgress := startProgress(e, f, run)
	runErr := run.Wait()
	stopProgress()
	return finishJob(ctx, e, f, st, job, o, prices, run, runErr)
}

// newEngine makes the engine of a job's online runs, named owner in the ledger (a random
// name when ""); closeFn stops its upstream.
func newEngine(e *env, f *runFlags, st sluice.Store, o jobOptions, prices *pricing.Table, owner string) (eng *sluice.Engine, closeFn func(), err error) {
	up, closeUp, err := o.upstream(e, f.simConfig)
	if err != nil {
		return nil, nil, err
	}
	cfg := o.engineConfig()
	cfg.Owner = owner
	if shared(st) {
		cfg.Lease = sharedLease
	}
	cfg.Cost = prices.OnlineCost
	cfg.Logger = e.logger(f.observe.level())
	m, stopMetrics := f.observe.metrics, func() {}
	if m == nil {
		if m, stopMetrics, err = startMetrics(e, f.observe.metricsAddr); err != nil {
			closeUp()
			return nil, nil, err
		}
	}
	cfg.Observer = f.observers(m)
	var closeRec func()
	cfg.Observer, closeRec = withRecorder(e, st, cfg.Observer) // the dashboard's timeline (ui.go)
	eng, err = sluice.New(st, up, cfg)
	if err != nil {
		closeRec()
		stopMetrics()
		closeUp()
		return nil, nil, usageError("%v", err)
	}
	return eng, func() { closeRec(); stopMetrics(); closeUp() }, nil
}

// saveRate records what an online run learned of its upstream's speed (the limits its
// headers gave, the median latency of the job's requests), for hybrid runs to plan with.
// Failing to is only a warning.
func saveRate(ctx context.Context, e *env, st sluice.Store, baseURL string, run *sluice.Run, p50 time.Duration) {
	rs, ok := st.(interface {
		SaveRate(context.Context, string, sluice.RateObservation) error
	})
	p := run.Progress()
	if !ok || p.Done+p.Failed == 0 {
		return
	}
	obs := sluice.RateObservation{Latency: p50, At: time.Now()}
	if p.Limits.Learned {
		obs.RPM, obs.TPM = p.Limits.RPM, p.Limits.TPM
	}
	if err := rs.SaveRate(ctx, baseURL, obs); err != nil {
		fmt.Fprintln(e.stderr, "warning:", err)
	}
}

// finishJob writes the output file from the ledger, prints the report, records what the
// online run (nil for none) learned of its upstream, and maps the run's end to an exit
// status.
func finishJob(ctx context.Context, e *env, f *runFlags, st sluice.Store, job *sluice.Job, o jobOptions, prices *pricing.Table, run *sluice.Run, runErr error) error {
	counts, werr := writeOutputFiles(ctx, st, job.ID, o.Output, o.Errors)
	rep, rerr := buildReport(ctx, st, job, prices)
	if rerr == nil && run != nil {
		rep.AddRun(run.Progress())
		addSpeeds(rep, f.speeds)
		saveRate(ctx, e, st, o.BaseURL, run, time.Duration(rep.LatencyMS.P50*float64(time.Millisecond)))
	}
	if rerr == nil {
		if f.jsonOut {
			if err := writeJSON(e.stdout, rep); err != nil {
				return err
			}
		} else {
			printJobReport(e.stdout, rep)
		}
	}
	switch {
	case werr != nil:
		return werr
	case rerr != nil:
		return rerr
	case errors.Is(runErr, sluice.ErrInterrupted):
		return &exitCodeError{code: exitInterrupted, err: fmt.Errorf("job %s interrupted: resume it with: sluice resume %s", job.ID, job.ID)}
	case errors.Is(runErr, sluice.ErrBudgetExhausted):
		return &exitCodeError{code: exitBudget, err: fmt.Errorf("%w; job %s stopped: resume it with a higher budget: sluice resume %s %s …", runErr, job.ID, job.ID, budgetFlags(o.MaxCost, o.MaxTokens))}
	case errors.Is(runErr, sluice.ErrAborted):
		return &exitCodeError{code: exitAborted, err: fmt.Errorf("%w; job %s aborted: resume it once that is fixed: sluice resume %s", runErr, job.ID, job.ID)}
	case runErr != nil:
		return runErr
	case counts.Failed > 0:
		return &exitCodeError{code: exitFailed}
	}
	return nil
}

// writeOutputFiles writes the output (and errors) file from the ledger atomically: a
// reader never sees a half-written file, and a crash leaves the previous one.
func writeOutputFiles(ctx context.Context, st sluice.Store, jobID, output, errorsPath string) (sluice.OutputCounts, error) {
	out, err := createAtomic(output)
	if err != nil {
		return sluice.OutputCounts{}, err
	}
	defer out.abort()
	var errFile *atomicFile
	if errorsPath != "" {
		if errFile, err = createAtomic(errorsPath); err != nil {
			return sluice.OutputCounts{}, err
		}
		defer errFile.abort()
	}
	var ew io.Writer // stays a nil interface without an errors file
	if errFile != nil {
		ew = errFile.f
	}
	counts, err := sluice.WriteOutput(ctx, st, jobID, out.f, ew)
	if err != nil {
		return counts, err
	}
	if err := out.commit(); err != nil {
		return counts, err
	}
	if errFile != nil {
		if err := errFile.commit(); err != nil {
			return counts, err
		}
	}
	return counts, nil
}

func loadPrices(path string) (*pricing.Table, error) {
	t := pricing.Default()
	if path == "" {
		return t, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, usageError("prices: %v", err)
	}
	defer fh.Close()
	extra, err := pricing.Load(fh)
	if err != nil {
		return nil, usageError("prices %s: %v", path, err)
	}
	return t.Merge(extra), nil
}

// demoSim is the simulator the quick start and --sim use: a little latency, so the
// progress display has something to show, and no faults.
func demoSim() sim.Config {
	return sim.Config{Seed: 1, TTFT: 20 * time.Millisecond, PerToken: time.Millisecond, Jitter: 0.3}
}
