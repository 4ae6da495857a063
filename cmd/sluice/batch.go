package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/report"
	"github.com/sluice-llm/sluice/tokens"
)

// The modes a job runs in.
const (
	modeOnline = ""       // sluice run: every request online
	modeBatch  = "batch"  // sluice batch: through the provider's Batch API
	modeHybrid = "hybrid" // sluice run --mode hybrid: the Batch API, online before a deadline
)

var _ batch.API = (*openai.Client)(nil)

// batchFlags are the flags of runs through a provider's Batch API.
type batchFlags struct {
	follow   bool // submit --watch
	metadata []string
	poll     pollFlags
	deadline string
	reserve  time.Duration
	latency  time.Duration
	mode     string
}

func (b *batchFlags) register(fs *pflag.FlagSet, o *jobOptions) {
	fs.Int64Var(&o.PartLines, "part-lines", batch.DefaultMaxLines, "most requests in one batch (the provider's limit)")
	fs.Int64Var(&o.PartBytes, "part-bytes", batch.DefaultMaxBytes, "largest batch input file in bytes (the provider's limit)")
	fs.StringVar(&o.Window, "completion-window", batch.DefaultWindow, "the batches' completion window")
	fs.IntVar(&o.MaxRounds, "max-rounds", batch.DefaultMaxRounds, "how many times a request is submitted before what is left is given up (or run online with --finish-online)")
	fs.BoolVar(&o.FinishOnline, "finish-online", false, "after the last round, run what is left online")
	fs.BoolVar(&o.KeepFiles, "keep-files", false, "keep the batches' input files at the provider once their results are collected (default: delete them)")
	fs.StringSliceVar(&b.metadata, "metadata", nil, "KEY=VALUE added to every batch's metadata (repeatable)")
	b.poll.register(fs, batch.DefaultPoll)
	fs.StringVar(&o.BatchBaseURL, "batch-base-url", "", "the Batch API's base URL, when it is not --base-url's (a sluice serve in front of an upstream without one)")
}

// pollFlags say how a command waits on the provider's batches.
type pollFlags struct {
	every  time.Duration // --poll: the longest wait between polls
	giveUp time.Duration // --give-up: how long the provider may be unreachable
}

func (p *pollFlags) register(fs *pflag.FlagSet, every time.Duration) {
	fs.DurationVar(&p.every, "poll", every, "the longest wait between polls of the batches' status (polls start 1s apart, and again after each change)")
	fs.DurationVar(&p.giveUp, "give-up", batch.DefaultGiveUp, "stop (exit 4, resumable) once no call has reached the provider for this long")
}

func (p pollFlags) check() error {
	if p.every <= 0 || p.giveUp <= 0 {
		return usageError("--poll and --give-up must be positive")
	}
	return nil
}

// apply checks the batch flags and copies them into o.
func (b *batchFlags) apply(o *jobOptions) error {
	switch {
	case o.PartLines < 1:
		return usageError("--part-lines must be at least 1")
	case o.PartBytes < 1024:
		return usageError("--part-bytes must be at least 1024")
	case o.MaxRounds < 1:
		return usageError("--max-rounds must be at least 1")
	}
	if err := b.poll.check(); err != nil {
		return err
	}
	if o.BatchBaseURL != "" {
		o.BatchBaseURL = strings.TrimRight(o.BatchBaseURL, "/")
		if err := checkBaseURL("--batch-base-url", o.BatchBaseURL); err != nil {
			return err
		}
	} else if o.Sim {
		return usageError("the built-in simulator has no Batch API: run `sluice serve` (it serves one over the simulator) and point --batch-base-url at it")
	}
	o.Metadata = map[string]string{}
	for _, kv := range b.metadata {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError("--metadata wants KEY=VALUE, got %q", kv)
		}
		o.Metadata[k] = v
	}
	return nil
}

// batchClient is the provider's API client of a job.
func batchClient(e *env, o jobOptions) (*openai.Client, error) {
	if o.BatchBaseURL != "" {
		o.BaseURL, o.Sim = o.BatchBaseURL, false
	}
	up, _, err := o.upstream(e, demoSim())
	return up, err
}

// newRunner is the Batch API runner of a job.
func newRunner(e *env, st store, o jobOptions) (*batch.Runner, error) {
	client, err := batchClient(e, o)
	if err != nil {
		return nil, err
	}
	r, err := batch.New(st, client, batch.Config{
		MaxLines: o.PartLines, MaxBytes: o.PartBytes, Window: o.Window, MaxRounds: o.MaxRounds, Metadata: o.Metadata,
		KeepFiles: o.KeepFiles,
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return r, nil
}

func newBatchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "Run a JSONL file through a provider's Batch API (half price, up to 24 h)",
		Long: `batch runs a file of requests through the provider's Batch API: submit splits it into
parts within the provider's limits (by endpoint and model), uploads them and creates a
batch for each; watch polls them, collects their results into the ledger as they end and
resubmits only the requests that did not finish; results writes one output file in input
order. Everything is kept in the store, so every command can be stopped and run again.`,
		Example: `  sluice batch submit requests.jsonl --base-url https://api.openai.com/v1
  sluice batch watch JOB --finish-online
  sluice batch results JOB -o results.jsonl`,
	}
	cmd.AddCommand(newBatchSubmitCmd(e), newBatchStatusCmd(e), newBatchWatchCmd(e), newBatchResultsCmd(e), newBatchCancelCmd(e))
	return cmd
}

func newBatchSubmitCmd(e *env) *cobra.Command {
	f := &runFlags{}
	bf := &f.batch
	cmd := &cobra.Command{
		Use:   "submit INPUT",
		Short: "Validate, split and upload a file, and create its batches",
		Args:  exactArgs(1, "one input file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			o, err := f.newOptions(e, args[0])
			if err != nil {
				return err
			}
			o.Mode = modeBatch
			if err := bf.apply(&o); err != nil {
				return err
			}
			if o.MaxCost > 0 || o.MaxTokens > 0 {
				return usageError("--max-cost and --max-tokens cap online runs; a batch's cost is known before it is sent: use --confirm-cost (or sluice estimate)")
			}
			st, path, err := openStore(ctx, e, f.store)
			if err != nil {
				return err
			}
			defer st.Close()
			job, err := findOrCreateJob(ctx, st, o, f.fresh)
			if err != nil {
				return err
			}
			unlock, err := lockBatchJob(ctx, st, path, job)
			if err != nil {
				return err
			}
			defer unlock()
			if f.confirmCost > 0 && !job.IngestDone {
				if err := confirmCost(ctx, e, f, st, o.source(), true); err != nil {
					return err
				}
			}
			r, err := newRunner(e, st, o)
			if err != nil {
				return err
			}
			bad, err := ingestJob(ctx, e, st, job, o)
			if err != nil {
				return err
			}
			if bf.follow {
				in := newInterrupt(ctx, e, defaultGrace, drainRuns, "")
				defer in.stop()
				b := &batchJob{st: st, job: job, o: o, r: r, unlock: func() {}}
				return watchToEnd(in.ctx, e, b, o, true, bf.poll, f.jsonOut, o.Output, false)
			}
			prog, err := r.Step(ctx, job, true)
			if err == nil && prog.Unreachable != nil {
				err = fmt.Errorf("%w: %w", batch.ErrUnreachable, prog.Unreachable)
			}
			if err != nil {
				return providerError(job, err)
			}
			for _, w := range prog.Warnings {
				fmt.Fprintf(e.stderr, "warning: %s (sluice batch watch tries again)\n", w)
			}
			if f.jsonOut {
				return writeJSON(e.stdout, newBatchStatus(job, prog, bad))
			}
			printBatchStatus(e.stdout, job, prog)
			fmt.Fprintf(e.stdout, "\njob %s\nfollow it with: sluice batch watch %s\n", job.ID, job.ID)
			return nil
		},
	}
	f.register(cmd.Flags(), true)
	f.batch.register(cmd.Flags(), &f.opts)
	cmd.Flags().BoolVar(&f.batch.follow, "watch", false, "then follow the job to its end as sluice batch watch does, and write the output file (-o)")
	// Caps of online runs: submit refuses them with a hint to --confirm-cost.
	for _, name := range []string{"max-cost", "max-tokens"} {
		_ = cmd.Flags().MarkHidden(name)
	}
	return cmd
}

// ingestJob adds the job's input to the ledger, naming the lines that are not valid
// requests (they get error lines in the output and are never sent), and returns how many
// there were.
func ingestJob(ctx context.Context, e *env, st store, job *sluice.Job, o jobOptions) (int, error) {
	if job.IngestDone {
		return 0, nil
	}
	in, err := openSource(o)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	const show = 20
	bad := 0
	err = batch.Ingest(ctx, st, job, newSource(in, o, tokens.Default()), func(le *sluice.LineError) {
		if bad < show {
			fmt.Fprintf(e.stderr, "%s: %v (not submitted)\n", o.Input, le)
		}
		bad++
	})
	if bad > show {
		fmt.Fprintf(e.stderr, "%s: %d more invalid lines\n", o.Input, bad-show)
	}
	return bad, err
}

// lockBatchJob takes the job's lock: one process at a time creates its batches.
func lockBatchJob(ctx context.Context, st store, where string, job *sluice.Job) (func(), error) {
	unlock, err := lockStoreJob(ctx, st, where, job.ID)
	if errors.Is(err, errJobLocked) {
		return nil, usageError("job %s: %v", job.ID, err)
	}
	return unlock, err
}

// providerError gives a failure that stops a batch job the exit status of an aborted run.
func providerError(job *sluice.Job, err error) error {
	var ue *sluice.UpstreamError
	if errors.Is(err, batch.ErrUnreachable) {
		return &exitCodeError{code: exitAborted, err: fmt.Errorf("job %s: %w; check --batch-base-url (or --base-url), then carry on with: sluice batch watch %s", job.ID, err, job.ID)}
	}
	if errors.Is(err, batch.ErrNoBatchAPI) {
		if u := batchBaseURL(job); u != "" && !strings.HasSuffix(strings.TrimRight(u, "/"), "/v1") {
			return &exitCodeError{code: exitAborted, err: fmt.Errorf("job %s: %w at %s: a base URL usually ends in /v1 (%s/v1); if it has none, run sluice serve in front of it and pass its URL as --batch-base-url", job.ID, err, u, strings.TrimRight(u, "/"))}
		}
		return &exitCodeError{code: exitAborted, err: fmt.Errorf("job %s: %w; run sluice serve in front of it and pass its URL as --batch-base-url", job.ID, err)}
	}
	if errors.As(err, &ue) {
		return &exitCodeError{code: exitAborted, err: fmt.Errorf("job %s: %w", job.ID, err)}
	}
	return err
}

// batchBaseURL is the Batch API base URL a job was submitted to, from its saved options.
func batchBaseURL(job *sluice.Job) string {
	var o jobOptions
	if json.Unmarshal(job.Options, &o) != nil {
		return ""
	}
	if o.BatchBaseURL != "" {
		return o.BatchBaseURL
	}
	return o.BaseURL
}

// batchJob is a job run through the Batch API, opened by a batch command.
type batchJob struct {
	st     store
	job    *sluice.Job
	o      jobOptions
	r      *batch.Runner
	unlock func()
}

// openBatchJob opens the store, the job id run through the Batch API and its runner,
// holding the job's lock when lock is set (the commands that create or cancel batches).
func openBatchJob(ctx context.Context, e *env, storeFlag, id string, lock bool) (*batchJob, error) {
	st, path, err := openExistingStore(ctx, e, storeFlag)
	if err != nil {
		return nil, err
	}
	b := &batchJob{st: st, unlock: func() {}}
	b.job, b.o, err = loadJob(ctx, st, path, id)
	if err == nil && b.o.Mode == modeOnline {
		err = usageError("job %s runs online, not through the Batch API: sluice show %s", id, id)
	}
	if err == nil && lock {
		b.unlock, err = lockBatchJob(ctx, st, path, b.job)
	}
	if err == nil {
		b.r, err = newRunner(e, st, b.o)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// openRefreshed opens a batch job and refreshes it: the batches are polled and what
// ended is collected, but nothing is created at the provider.
func openRefreshed(ctx context.Context, e *env, storeFlag, id string) (*batchJob, *batch.Progress, error) {
	b, err := openBatchJob(ctx, e, storeFlag, id, false)
	if err != nil {
		return nil, nil, err
	}
	prog, err := b.r.Refresh(ctx, b.job)
	if err != nil {
		b.close()
		return nil, nil, providerError(b.job, err)
	}
	for _, w := range prog.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s (what is shown is what the store last knew)\n", w)
	}
	return b, prog, nil
}

func (b *batchJob) close() {
	b.unlock()
	b.st.Close()
}

// loadJob reads a job and its options.
func loadJob(ctx context.Context, st store, path, id string) (*sluice.Job, jobOptions, error) {
	job, err := findJob(ctx, st, path, id)
	if err != nil {
		return nil, jobOptions{}, err
	}
	o, err := decodeOptions(job)
	return job, o, err
}

func newBatchStatusCmd(e *env) *cobra.Command {
	var storeFlag string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "status JOB",
		Short: "Show a batch job's parts, polling the provider once",
		Args:  exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			b, prog, err := openRefreshed(ctx, e, storeFlag, args[0])
			if err != nil {
				return err
			}
			defer b.close()
			if jsonOut {
				return writeJSON(e.stdout, newBatchStatus(b.job, prog, 0))
			}
			printBatchStatus(e.stdout, b.job, prog)
			return nil
		},
	}
	cmd.Flags().StringVar(&storeFlag, "store", "", storeUsage)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the status as JSON")
	return cmd
}

func newBatchWatchCmd(e *env) *cobra.Command {
	var (
		storeFlag string
		jsonOut   bool
		resume    bool
		poll      pollFlags
		finish    bool
	)
	cmd := &cobra.Command{
		Use:   "watch JOB",
		Short: "Follow a batch job to its end: poll, collect results, resubmit what failed",
		Long: `watch polls the job's batches, collects the results of each as it ends, and submits the
requests that did not finish (expired, failed, cancelled, retryable errors) as a new round,
up to --max-rounds. At the end it writes the job's output file (sluice batch results writes
it at any time). Stop it at any time; run it again to carry on.`,
		Args: exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := newInterrupt(cmd.Context(), e, defaultGrace, drainRuns, "")
			defer in.stop()
			ctx := in.ctx
			b, err := openBatchJob(ctx, e, storeFlag, args[0], true)
			if err != nil {
				return err
			}
			defer b.close()
			st, job, o := b.st, b.job, b.o
			if cmd.Flags().Changed("finish-online") {
				o.FinishOnline = finish
			}
			if _, err := ingestJob(ctx, e, st, job, o); err != nil { // a submit stopped early
				return err
			}
			cancelled := job.State == sluice.JobCancelled
			if cancelled && resume {
				job.State, job.Error = sluice.JobRunning, ""
				if err := st.UpdateJob(ctx, job); err != nil {
					return err
				}
				cancelled = false
			}
			return watchToEnd(ctx, e, b, o, !cancelled, poll, jsonOut, o.Output, cancelled)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&storeFlag, "store", "", storeUsage)
	fs.BoolVar(&jsonOut, "json", false, "print the final status as JSON")
	fs.BoolVar(&resume, "resume", false, "carry on with a cancelled job: submit what is left again")
	poll.register(fs, batch.DefaultPoll)
	fs.BoolVar(&finish, "finish-online", false, "after the last round, run what is left online")
	return cmd
}

// printReport prints the report of a job run through the Batch API: its cost, and what
// it saved against running it all online.
func printReport(ctx context.Context, e *env, st store, job *sluice.Job) error {
	prices, err := loadPrices("")
	if err != nil {
		return err
	}
	rep, err := buildReport(ctx, st, job, prices)
	if err != nil {
		return err
	}
	printJobReport(e.stdout, rep)
	return nil
}

// watchToEnd follows a batch job to its end (submitting new rounds if submit is set),
// runs what is left online if the job says so, writes the output file when output is not
// "", and prints the final status and report.
func watchToEnd(ctx context.Context, e *env, b *batchJob, o jobOptions, submit bool, poll pollFlags, jsonOut bool, output string, cancelled bool) error {
	st, job, r := b.st, b.job, b.r
	prog, err := watch(ctx, e, r, job, submit, poll)
	if err != nil {
		return providerError(job, err)
	}
	if prog.Leftover > 0 && o.FinishOnline {
		fmt.Fprintf(e.stderr, "%d requests left after %d rounds: running them online\n", prog.Leftover, prog.Round)
		if err := finishOnline(ctx, e, st, job, o); err != nil {
			return err
		}
		if prog, err = r.Refresh(ctx, job); err != nil {
			return err
		}
	}
	if output != "" {
		if _, err := writeOutputFiles(ctx, st, job.ID, output, o.Errors); err != nil {
			return err
		}
	}
	if jsonOut {
		if err := writeJSON(e.stdout, newBatchStatus(job, prog, 0)); err != nil {
			return err
		}
	} else {
		printBatchStatus(e.stdout, job, prog)
		if prog.Done {
			if err := printReport(ctx, e, st, job); err != nil {
				return err
			}
		}
	}
	return watchEnd(job, prog, cancelled)
}

// watch steps the job until every request is final, nothing is left to submit, or ctx
// ends, printing a line whenever something changed.
func watch(ctx context.Context, e *env, r *batch.Runner, job *sluice.Job, submit bool, poll pollFlags) (*batch.Progress, error) {
	last, lastWarn := "", ""
	prog, err := r.Watch(ctx, job, batch.WatchOptions{Submit: submit, Poll: poll.every, GiveUp: poll.giveUp, OnStep: func(prog *batch.Progress) {
		if line := statusLine(prog); line != last {
			fmt.Fprintf(e.stderr, "%s %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		// A warning is shown when it changes, not at every poll.
		if w := strings.Join(prog.Warnings, "\n  warning: "); w != lastWarn {
			if w != "" {
				fmt.Fprintf(e.stderr, "  warning: %s\n", w)
			}
			lastWarn = w
		}
	}})
	if ctx.Err() != nil {
		return stopped(job, err)
	}
	return prog, err
}

// stopped is the end of a watch that was interrupted (err: how its last step ended).
func stopped(job *sluice.Job, err error) (*batch.Progress, error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	return nil, &exitCodeError{code: exitInterrupted, err: fmt.Errorf("stopped watching job %s; its batches go on at the provider: sluice batch watch %s", job.ID, job.ID)}
}

// watchEnd maps the end of a watch to an exit status.
func watchEnd(job *sluice.Job, prog *batch.Progress, cancelled bool) error {
	switch {
	case prog.Done && prog.Stats.Failed > 0:
		return &exitCodeError{code: exitFailed}
	case prog.Done:
		return nil
	case cancelled:
		return &exitCodeError{code: exitInterrupted, err: fmt.Errorf("job %s was cancelled: its finished results are kept; submit the rest again with: sluice batch watch %s --resume", job.ID, job.ID)}
	default:
		return &exitCodeError{code: exitInterrupted, err: fmt.Errorf("job %s: %d requests are not done after %d rounds: run them online with sluice batch watch %s --finish-online", job.ID, prog.Leftover, prog.Round, job.ID)}
	}
}

// finishOnline runs a batch job's pending requests online, as sluice run would.
func finishOnline(ctx context.Context, e *env, st store, job *sluice.Job, o jobOptions) error {
	f := &runFlags{opts: o, progress: "none", grace: defaultGrace}
	online, err := newOnlineRun(ctx, e, f, st, job, o)
	if err != nil {
		return err
	}
	defer online.Close()
	runErr := online.Run(ctx)
	if last := online.Last(); last != nil {
		if stats, err := st.Stats(ctx, job.ID); err == nil {
			saveRate(ctx, e, st, o.BaseURL, last, stats.LatencyP50)
		}
	}
	return runErr
}

func newBatchResultsCmd(e *env) *cobra.Command {
	var (
		storeFlag, output, errorsPath string
		jsonOut                       bool
	)
	cmd := &cobra.Command{
		Use:   "results JOB",
		Short: "Collect what the batches finished and write one output file in input order",
		Args:  exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			b, prog, err := openRefreshed(ctx, e, storeFlag, args[0])
			if err != nil {
				return err
			}
			defer b.close()
			if output == "" {
				output = b.o.Output
			}
			counts, err := writeOutputFiles(ctx, b.st, b.job.ID, output, errorsPath)
			if err != nil {
				return err
			}
			missing, err := batch.MissingRequests(ctx, b.st, b.job.ID, prog.Parts)
			if err != nil {
				return err
			}
			res := resultsReport{Job: b.job.ID, Output: output, Written: counts.Done + counts.Failed,
				Done: counts.Done, Failed: counts.Failed, Missing: int64(len(missing)), MissingRequests: missing}
			if jsonOut {
				err = writeJSON(e.stdout, res)
			} else {
				res.print(e.stdout)
			}
			if err != nil {
				return err
			}
			return res.exit()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&storeFlag, "store", "", storeUsage)
	fs.StringVarP(&output, "output", "o", "", "write results here (default: the job's output file)")
	fs.StringVar(&errorsPath, "errors", "", "also write failed requests here")
	fs.BoolVar(&jsonOut, "json", false, "print the summary as JSON")
	return cmd
}

// resultsReport is what sluice batch results wrote and what it could not.
type resultsReport struct {
	Job     string `json:"job"`
	Output  string `json:"output"`
	Written int64  `json:"written"`
	Done    int64  `json:"done"`
	Failed  int64  `json:"failed"`
	Missing int64  `json:"missing"`
	// MissingRequests are the requests with no result yet, in line order, and where each is.
	MissingRequests []batch.Missing `json:"missing_requests"`
}

// exit maps what results wrote to sluice's exit statuses: 5 while requests have no result
// (resumable: watch the job to its end), 3 when some failed, 0 when every one is done.
func (r resultsReport) exit() error {
	switch {
	case r.Missing > 0:
		return &exitCodeError{code: exitInterrupted, err: fmt.Errorf("job %s: %d requests have no result yet: sluice batch watch %s", r.Job, r.Missing, r.Job)}
	case r.Failed > 0:
		return &exitCodeError{code: exitFailed}
	}
	return nil
}

func (r resultsReport) print(w io.Writer) {
	fmt.Fprintf(w, "wrote %d results (%d done, %d failed) to %s\n", r.Written, r.Done, r.Failed, r.Output)
	if r.Missing == 0 {
		fmt.Fprintln(w, "every request has a result")
		return
	}
	fmt.Fprintf(w, "%d requests have no result yet:\n", r.Missing)
	const show = 10
	for i, m := range r.MissingRequests {
		if i == show {
			fmt.Fprintf(w, "  … and %d more (--json lists them all)\n", len(r.MissingRequests)-show)
			break
		}
		fmt.Fprintf(w, "  line %d  %s  %s\n", m.Line, m.CustomID, m.Where)
	}
}

func newBatchCancelCmd(e *env) *cobra.Command {
	var (
		storeFlag string
		noWait    bool
		jsonOut   bool
		poll      pollFlags
	)
	cmd := &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a batch job's batches, keeping what they finished",
		Args:  exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := newInterrupt(cmd.Context(), e, defaultGrace, drainRuns, "")
			defer in.stop()
			ctx := in.ctx
			b, err := openBatchJob(ctx, e, storeFlag, args[0], true)
			if err != nil {
				return err
			}
			defer b.close()
			st, job, r := b.st, b.job, b.r
			if job.State != sluice.JobCompleted {
				job.State, job.Error = sluice.JobCancelled, "cancelled by sluice batch cancel"
				if err := st.UpdateJob(ctx, job); err != nil {
					return err
				}
			}
			if err := r.Cancel(ctx, job); err != nil {
				return providerError(job, err)
			}
			var prog *batch.Progress
			if noWait {
				prog, err = r.Refresh(ctx, job)
			} else {
				prog, err = watch(ctx, e, r, job, false, poll)
			}
			if err != nil {
				return providerError(job, err)
			}
			if jsonOut {
				return writeJSON(e.stdout, newBatchStatus(job, prog, 0))
			}
			printBatchStatus(e.stdout, job, prog)
			if noWait {
				fmt.Fprintf(e.stdout, "cancel requested; sluice batch watch %s collects what finished\n", job.ID)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&storeFlag, "store", "", storeUsage)
	fs.BoolVar(&noWait, "no-wait", false, "do not wait for the batches to end cancelled")
	fs.BoolVar(&jsonOut, "json", false, "print the status as JSON")
	poll.register(fs, 5*time.Second)
	return cmd
}

// statusLine summarises a batch job's progress in one line. It never says 100% before every
// request is final: a batch that is finalizing has not delivered its results.
func statusLine(prog *batch.Progress) string {
	s := prog.Stats
	final := s.Done + s.Failed
	pct := 0.0
	if s.Total > 0 {
		pct = 100 * float64(final) / float64(s.Total)
	}
	if !prog.Done && pct > 99.9 {
		pct = 99.9
	}
	phases := map[string]int{}
	var order []string
	var running sluice.RequestCounts
	for _, p := range prog.Parts {
		if p.Collected {
			continue
		}
		ph := batch.Phase(p)
		if phases[ph] == 0 {
			order = append(order, ph)
		}
		phases[ph]++
		running.Total += p.Counts.Total
		running.Completed += p.Counts.Completed
		running.Failed += p.Counts.Failed
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%.1f%% final (%d done, %d failed of %d)", pct, s.Done, s.Failed, s.Total)
	if len(order) > 0 {
		var ps []string
		for _, ph := range order {
			ps = append(ps, fmt.Sprintf("%d %s", phases[ph], ph))
		}
		fmt.Fprintf(&b, "; round %d: %s", prog.Round, strings.Join(ps, ", "))
		if running.Total > 0 {
			fmt.Fprintf(&b, " (provider: %d/%d completed, %d failed)", running.Completed, running.Total, running.Failed)
		}
	}
	if prog.Leftover > 0 {
		fmt.Fprintf(&b, "; %d left after %d rounds", prog.Leftover, prog.Round)
	}
	return b.String()
}

// batchStatus is the JSON form of a batch job's status (--json of the batch commands).
type batchStatus struct {
	Job          string       `json:"job"`
	State        string       `json:"state"`
	Error        string       `json:"error,omitempty"`
	Round        int          `json:"round"`
	Requests     requestCount `json:"requests"`
	InvalidLines int          `json:"invalid_lines,omitempty"`
	Leftover     int64        `json:"leftover"`
	Done         bool         `json:"done"`
	Parts        []partStatus `json:"parts"`
	Warnings     []string     `json:"warnings,omitempty"`
}

type requestCount struct {
	Total   int64 `json:"total"`
	Done    int64 `json:"done"`
	Failed  int64 `json:"failed"`
	Waiting int64 `json:"waiting"` // not final: in a batch, or pending for the next round
}

type partStatus struct {
	Part     int                  `json:"part"`
	Round    int                  `json:"round"`
	Endpoint string               `json:"endpoint"`
	Model    string               `json:"model"`
	Requests int64                `json:"requests"`
	Bytes    int64                `json:"bytes"`
	Phase    string               `json:"phase"`
	BatchID  string               `json:"batch_id,omitempty"`
	FileID   string               `json:"input_file_id,omitempty"`
	Status   string               `json:"status,omitempty"`
	Counts   sluice.RequestCounts `json:"request_counts"`
	Error    string               `json:"error,omitempty"`
	Usage    report.Tokens        `json:"usage"`
}

func newBatchStatus(job *sluice.Job, prog *batch.Progress, invalid int) batchStatus {
	s := prog.Stats
	st := batchStatus{
		Job: job.ID, State: string(job.State), Error: job.Error, Round: prog.Round,
		Requests:     requestCount{Total: s.Total, Done: s.Done, Failed: s.Failed, Waiting: s.Pending + s.InFlight},
		InvalidLines: invalid, Leftover: prog.Leftover, Done: prog.Done, Parts: []partStatus{}, Warnings: prog.Warnings,
	}
	for _, p := range prog.Parts {
		st.Parts = append(st.Parts, partStatus{
			Part: p.Number, Round: p.Round, Endpoint: p.Endpoint, Model: p.Model, Requests: p.Requests, Bytes: p.Bytes,
			Phase: batch.Phase(p), BatchID: p.BatchID, FileID: p.FileID, Status: string(p.Status), Counts: p.Counts,
			Error: p.Error, Usage: report.TokensOf(p.Usage),
		})
	}
	return st
}

// printBatchStatus writes a job's parts as a table.
func printBatchStatus(w io.Writer, job *sluice.Job, prog *batch.Progress) {
	fmt.Fprintf(w, "job %s: %s\n  %s\n", job.ID, job.State, statusLine(prog))
	if job.Error != "" && job.State != sluice.JobCompleted {
		fmt.Fprintf(w, "  reason: %s\n", job.Error)
	}
	if len(prog.Parts) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PART\tROUND\tMODEL\tREQUESTS\tBATCH\tSTATUS\tCOMPLETED\tFAILED")
	for _, p := range prog.Parts {
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%d\t%s\t%s\t%d\t%d\n", p.Number, p.Round, p.Model, p.Requests,
			orDash(p.BatchID), batch.Phase(p), p.Counts.Completed, p.Counts.Failed)
	}
	tw.Flush()
	for _, p := range prog.Parts {
		if p.Error != "" {
			fmt.Fprintf(w, "  part %d: %s\n", p.Number, p.Error)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
