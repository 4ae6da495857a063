package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// jobSummary is one row of "sluice jobs --json".
type jobSummary struct {
	Job       string    `json:"job"`
	State     string    `json:"state"`
	Input     string    `json:"input"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Total     int64     `json:"total"`
	Done      int64     `json:"done"`
	Failed    int64     `json:"failed"`
	Error     string    `json:"error,omitempty"`
}

func newJobsCmd(e *env) *cobra.Command {
	var storeFlag string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List jobs, newest first (rm and prune delete them)",
		Long: `jobs lists the store's jobs, newest first. A job left "running" by a process that is gone
(kill -9, a reboot) is shown as interrupted: sluice resume JOB carries on with it.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, path, err := openExistingStore(cmd.Context(), e, storeFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			jobs, err := st.Jobs(cmd.Context(), "")
			if err != nil {
				return err
			}
			rows := make([]jobSummary, 0, len(jobs))
			for _, j := range jobs {
				stats, err := st.Stats(cmd.Context(), j.ID)
				if err != nil {
					return err
				}
				rows = append(rows, jobSummary{
					Job: j.ID, State: string(shownState(cmd.Context(), st, path, j)), Input: j.Input, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
					Total: stats.Total, Done: stats.Done, Failed: stats.Failed, Error: j.Error,
				})
			}
			if jsonOut {
				return writeJSON(e.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(e.stdout, "no jobs yet")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSTATE\tDONE\tFAILED\tTOTAL\tUPDATED\tINPUT")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Job, r.State, r.Done, r.Failed, r.Total,
					r.UpdatedAt.Local().Format("2006-01-02 15:04"), filepath.Base(r.Input))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&storeFlag, "store", "", storeUsage)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.AddCommand(newJobsRmCmd(e), newJobsPruneCmd(e))
	return cmd
}

func newShowCmd(e *env) *cobra.Command {
	var storeFlag, pricesFlag string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "show JOB",
		Short: "Print a job's report",
		Args:  exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, path, err := openExistingStore(cmd.Context(), e, storeFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			job, err := findJob(cmd.Context(), st, path, args[0])
			if err != nil {
				return err
			}
			job.State = shownState(cmd.Context(), st, path, job)
			prices, err := loadPrices(pricesFlag)
			if err != nil {
				return err
			}
			rep, err := buildReport(cmd.Context(), st, job, prices)
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(e.stdout, rep)
			}
			printJobReport(e.stdout, rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&storeFlag, "store", "", storeUsage)
	cmd.Flags().StringVar(&pricesFlag, "prices", "", "a prices file overriding the built-in table")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the report as JSON")
	return cmd
}

func newExportCmd(e *env) *cobra.Command {
	var storeFlag, output, errorsPath string
	cmd := &cobra.Command{
		Use:   "export JOB",
		Short: "Write a job's results (so far) from the ledger, in input order",
		Args:  exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usageError("export needs -o FILE")
			}
			st, path, err := openExistingStore(cmd.Context(), e, storeFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := findJob(cmd.Context(), st, path, args[0]); err != nil {
				return err
			}
			counts, err := writeOutputFiles(cmd.Context(), st, args[0], output, errorsPath)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "wrote %d lines (%d done, %d failed) to %s\n", counts.Lines, counts.Done, counts.Failed, output)
			return nil
		},
	}
	cmd.Flags().StringVar(&storeFlag, "store", "", storeUsage)
	cmd.Flags().StringVarP(&output, "output", "o", "", "write results here")
	cmd.Flags().StringVar(&errorsPath, "errors", "", "also write failed requests here")
	return cmd
}
