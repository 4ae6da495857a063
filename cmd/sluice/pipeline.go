package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/tokens"
)

// maxProblemsShown bounds the row problems printed; the rest are counted.
const maxProblemsShown = 20

func newPipelineCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Run several prompts over every document of a CSV or JSONL file, into one table",
		Long: `A pipeline file names a documents file (.csv with a header row, or .jsonl), the field that
identifies a document, and tasks: prompts written as Go templates over the document's
fields ({{.text}}) and the outputs of other tasks ({{.tasks.summary}}).

  plan    check every document and show what would be sent and what it would cost
  render  write the first-stage requests as Batch API JSONL (for sluice run, or a provider's Batch API)
  run     run the pipeline and write one row per document, one column per task

Answers are cached in the store by the content of their request: running an unchanged
pipeline again sends nothing, and changing one task's prompt re-runs only that task.`,
	}
	cmd.AddCommand(newPipelinePlanCmd(e), newPipelineRenderCmd(e), newPipelineRunCmd(e))
	return cmd
}

// loadPipeline parses a pipeline file and reads its documents.
func loadPipeline(path string, prices *pricing.Table) (*pipeline.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError("%v", err)
	}
	defer f.Close()
	spec, err := pipeline.Parse(f, path)
	if err != nil {
		return nil, usageError("%v", err)
	}
	docs, err := pipeline.ReadFile(spec.Input, spec.ID)
	if err != nil {
		return nil, usageError("%s: %v", spec.Input, err)
	}
	return pipeline.NewPlan(spec, docs, tokens.Default(), prices.Cost), nil
}

// problemsError lists the plan's row problems as a usage error.
func problemsError(w io.Writer, p *pipeline.Plan) error {
	for i, pr := range p.Problems {
		if i == maxProblemsShown {
			fmt.Fprintf(w, "… and %d more\n", len(p.Problems)-i)
			break
		}
		fmt.Fprintf(w, "%s: %v\n", p.Spec.Input, pr)
	}
	return usageError("%d of %d rows cannot be run (see above); fix them, or run with --skip-invalid to leave them out", rowsWithProblems(p), len(p.Docs))
}

func rowsWithProblems(p *pipeline.Plan) int { return len(p.Docs) - p.Runnable() }

func newPipelinePlanCmd(e *env) *cobra.Command {
	var prices string
	var jsonOut, skipInvalid bool
	cmd := &cobra.Command{
		Use:   "plan PIPELINE",
		Short: "Check every document and show the requests and their estimated cost; sends nothing",
		Long: `Plan reads the pipeline and its documents, renders every first-stage request, counts its
tokens and prices it. Rows that cannot be run (a field a template uses is missing, a
duplicate id) are listed by row and field, and make the exit status 2. Nothing is sent.`,
		Args: exactArgs(1, "a pipeline file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			table, err := loadPrices(prices)
			if err != nil {
				return err
			}
			p, err := loadPipeline(args[0], table)
			if err != nil {
				return err
			}
			defer p.Close()
			if jsonOut {
				if err := writeJSON(e.stdout, planReport(p)); err != nil {
					return err
				}
			} else {
				printPlan(e.stdout, p)
			}
			if len(p.Problems) > 0 && !skipInvalid {
				return problemsError(e.stderr, p)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prices, "prices", "", "a prices file overriding the built-in table")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the plan as JSON")
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "plan the other rows when some cannot be run (exit 0), as run --skip-invalid would")
	return cmd
}

type planJSON struct {
	Pipeline string               `json:"pipeline"`
	Input    string               `json:"input"`
	Docs     int                  `json:"documents"`
	Runnable int                  `json:"runnable"`
	Requests int                  `json:"requests"`
	CostUSD  float64              `json:"cost_usd"`
	Tasks    []*pipeline.TaskPlan `json:"tasks"`
	Problems []*pipeline.RowError `json:"problems"`
	Stages   int                  `json:"stages"`
}

func planReport(p *pipeline.Plan) planJSON {
	problems := p.Problems
	if problems == nil {
		problems = []*pipeline.RowError{}
	}
	return planJSON{
		Pipeline: p.Spec.Path, Input: p.Spec.Input, Docs: len(p.Docs), Runnable: p.Runnable(),
		Requests: p.Requests(), CostUSD: p.CostUSD(), Tasks: p.Tasks, Problems: problems, Stages: p.Spec.Stages,
	}
}

func printPlan(w io.Writer, p *pipeline.Plan) {
	fmt.Fprintf(w, "pipeline %s: %d documents in %s, %d runnable, %d tasks in %d stages\n\n",
		p.Spec.Path, len(p.Docs), p.Spec.Input, p.Runnable(), len(p.Spec.Tasks), p.Spec.Stages)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "task\tstage\tmodel\trequests\tprompt tokens\tmax output\test. cost\t")
	for _, t := range p.Tasks {
		out, cost := "-", "unpriced"
		if t.MaxOutputTokens > 0 {
			out = fmt.Sprint(t.MaxOutputTokens)
		}
		if t.Priced {
			cost = fmt.Sprintf("$%.4f", t.CostUSD)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t\n", t.Task, t.Stage, t.Model, t.Requests, t.PromptTokens, out, cost)
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t\t\t$%.4f\t\n", p.Requests(), p.CostUSD())
	tw.Flush()
	fmt.Fprintf(w, "\nThe estimate counts prompts exactly and output at max_tokens (%d per request without it);\n", pipeline.GuessOutputTokens)
	fmt.Fprintln(w, "prompts of later stages do not yet include the outputs they use. Retries and fallbacks cost more.")
	for _, t := range p.Tasks {
		if t.Sample != nil {
			fmt.Fprintf(w, "\nfirst request of %s:\n  %s\n", t.Task, t.Sample)
		}
	}
}

func newPipelineRenderCmd(e *env) *cobra.Command {
	var output string
	var skipInvalid bool
	cmd := &cobra.Command{
		Use:   "render PIPELINE",
		Short: "Write the pipeline's requests as Batch API JSONL",
		Long: `Render writes every first-stage request (custom_id "ID/task") in the OpenAI Batch API
input format, for sluice run or a provider's Batch API. Tasks that use other tasks'
outputs are left out: they need those outputs first.`,
		Args: exactArgs(1, "a pipeline file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPipeline(args[0], pricing.Default())
			if err != nil {
				return err
			}
			defer p.Close()
			if len(p.Problems) > 0 && !skipInvalid {
				return problemsError(e.stderr, p)
			}
			out := e.stdout
			var af *atomicFile
			if output != "" && output != "-" {
				if af, err = createAtomic(output); err != nil {
					return err
				}
				defer af.abort()
				out = af.f
			}
			counts, err := pipeline.WriteBatch(out, p)
			if err != nil {
				return err
			}
			if af != nil {
				if err := af.commit(); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stderr, "%d requests written", counts.Requests)
			if len(counts.Skipped) > 0 {
				fmt.Fprintf(e.stderr, "; left out (they use other tasks' outputs): %s", strings.Join(counts.Skipped, ", "))
			}
			fmt.Fprintln(e.stderr)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "-", "write the requests here (- for stdout)")
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "leave out rows that cannot be run instead of failing")
	return cmd
}

func newPipelineRunCmd(e *env) *cobra.Command {
	f := &runFlags{}
	var output string
	var noCache, skipInvalid bool
	cmd := &cobra.Command{
		Use:   "run PIPELINE -o results.csv|results.jsonl",
		Short: "Run a pipeline and write one row per document, one column per task",
		Long: `Run sends every task's request for every document through the engine (limits, retries,
ledger), stage by stage, and writes the table: the id, one column per task (a task with
a JSON Schema of an object gets one column per property), then status, tokens, cost_usd
(what this run spent on the row) and cached (cells answered from the cache). A cell
without an answer carries the error.

Answers are cached in the store: an unchanged pipeline sends nothing the second time.`,
		Example: `  sluice pipeline run pipeline.yaml -o results.csv --sim
  sluice pipeline run pipeline.yaml -o results.jsonl --base-url https://api.deepseek.com/v1`,
		Args: exactArgs(1, "a pipeline file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usageError("name the table with -o results.csv or -o results.jsonl")
			}
			ext := strings.ToLower(filepath.Ext(output))
			if ext != ".csv" && ext != ".jsonl" {
				return usageError("-o %s: the table must be a .csv or .jsonl file", output)
			}
			o, err := f.newOptions(e, args[0])
			if err != nil {
				return err
			}
			prices, err := loadPrices(f.prices)
			if err != nil {
				return err
			}
			p, err := loadPipeline(args[0], prices)
			if err != nil {
				return err
			}
			defer p.Close()
			if len(p.Problems) > 0 && !skipInvalid {
				return problemsError(e.stderr, p)
			}
			return runPipeline(cmd.Context(), e, f, o, p, prices, output, !noCache)
		},
	}
	f.register(cmd.Flags(), false)
	f.registerObserve(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the table here: .csv or .jsonl")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "send every request, even those answered before (answers are still cached)")
	cmd.Flags().BoolVar(&skipInvalid, "skip-invalid", false, "run the other rows when some cannot be run; theirs carry the error")
	return cmd
}

// runPipeline runs the plan and writes the table and the report.
func runPipeline(ctx context.Context, e *env, f *runFlags, o jobOptions, p *pipeline.Plan, prices *pricing.Table, output string, useCache bool) error {
	st, _, err := openStore(ctx, e, f.store)
	if err != nil {
		return err
	}
	defer st.Close()
	up, closeUp, err := o.upstream(e, f.simConfig)
	if err != nil {
		return err
	}
	defer closeUp()
	cfg := o.engineConfig()
	cfg.Cost = prices.OnlineCost
	cfg.Logger = e.logger(f.observe.level())
	m, stopMetrics, err := startMetrics(e, f.observe.metricsAddr)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if m != nil {
		cfg.Observer = m
	}
	var closeRec func()
	cfg.Observer, closeRec = withRecorder(e, st, cfg.Observer) // the dashboard's timeline (ui.go)
	defer closeRec()
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		return usageError("%v", err)
	}
	rc := pipeline.RunConfig{
		BaseURL:   o.BaseURL,
		Estimator: tokens.Default(),
		Cost:      prices.Cost,
		// --max-cost and --max-tokens cap the whole pipeline, not each round's job.
		Budget: cfg.Budget,
		// The answers wait next to the table they go into, not in a /tmp that may be
		// held in memory.
		TempDir: filepath.Dir(output),
		OnRound: func(r pipeline.RoundInfo) {
			if r.Round == 0 {
				fmt.Fprintf(e.stderr, "stage %d, packed: %d packs answered from the cache, %d to send", r.Stage, r.CacheHits, r.Requests)
			} else {
				fmt.Fprintf(e.stderr, "stage %d, round %d: %d answered from the cache, %d to send", r.Stage, r.Round, r.CacheHits, r.Requests)
			}
			if r.Job != "" {
				fmt.Fprintf(e.stderr, " as job %s", r.Job)
			}
			fmt.Fprintln(e.stderr)
		},
		// Each round's progress, as sluice run shows a job's: bars on a terminal, a line
		// every --log-interval otherwise, tokens and $ included.
		OnStart: func(_ pipeline.RoundInfo, run *sluice.Run) func() { return startProgress(e, f, run) },
	}
	if useCache {
		rc.Cache = st
	}
	for _, t := range p.Spec.Tasks {
		if len(t.Fallback) > 0 {
			if served, err := up.Models(ctx); err == nil && len(served) > 0 {
				rc.Served = served
			}
			break
		}
	}

	// Answers already in are cached: a rerun sends only the rest.
	in := newInterrupt(ctx, e, f.grace, drainRuns, "; answers so far are cached: run the same command again to finish")
	table, rep, runErr := pipeline.Run(in.ctx, eng, st, p, rc)
	in.stop()
	if table == nil {
		return runErr
	}
	defer table.Close()

	if err := writeTable(table, output); err != nil {
		return err
	}
	if f.jsonOut {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		printPipelineReport(e.stdout, p, rep, output)
	}
	switch {
	case errors.Is(runErr, sluice.ErrInterrupted):
		return &exitCodeError{code: exitInterrupted, err: fmt.Errorf("interrupted: run the same command again to finish")}
	case errors.Is(runErr, sluice.ErrBudgetExhausted):
		return &exitCodeError{code: exitBudget, err: fmt.Errorf("%w; the cells not reached say so: run the same command with a higher %s to finish (answers so far are cached)", runErr, budgetFlags(o.MaxCost, o.MaxTokens))}
	case errors.Is(runErr, sluice.ErrAborted):
		return &exitCodeError{code: exitAborted, err: runErr}
	case runErr != nil:
		return runErr
	case rep.Failed > 0:
		return &exitCodeError{code: exitFailed}
	}
	return nil
}

func writeTable(table *pipeline.Table, output string) error {
	af, err := createAtomic(output)
	if err != nil {
		return err
	}
	defer af.abort()
	if strings.EqualFold(filepath.Ext(output), ".csv") {
		err = table.WriteCSV(af.f)
	} else {
		err = table.WriteJSONL(af.f)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	return af.commit()
}

func printPipelineReport(w io.Writer, p *pipeline.Plan, rep *pipeline.Report, output string) {
	fmt.Fprintf(w, "table:     %s (%d rows × %d tasks)\n", output, len(p.Docs), len(p.Spec.Tasks))
	fmt.Fprintf(w, "cells:     %d answered, %d with an error", rep.OK, rep.Failed)
	if rep.Invalid > 0 {
		fmt.Fprintf(w, ", %d of rows left out (--skip-invalid)", rep.Invalid)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "requests:  %d sent, %d answered from the cache\n", rep.Requests, rep.CacheHits)
	fmt.Fprintf(w, "tokens:    %d prompt, %d completion\n", rep.Usage.PromptTokens, rep.Usage.CompletionTokens)
	fmt.Fprintf(w, "cost:      $%.4f (the cache saved $%.4f)\n", rep.CostUSD, rep.SavedUSD)
	if rep.Packed > 0 {
		fmt.Fprintf(w, "packing:   %d cells answered by packed requests, about %d prompt tokens saved\n", rep.Packed, rep.PackTokensSaved)
	}
}
