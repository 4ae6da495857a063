package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
)

// jobLockPath is the file a process running a job holds locked.
func jobLockPath(storeFile, id string) string { return storeFile + "." + id + ".lock" }

func newJobsRmCmd(e *env) *cobra.Command {
	var storeFlag string
	cmd := &cobra.Command{
		Use:   "rm JOB...",
		Short: "Delete jobs and their ledger rows, and give the space back",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("name the jobs to delete (sluice jobs lists them)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			st, path, err := openExistingStore(cmd.Context(), e, storeFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			var jobs []*sluice.Job
			for _, id := range args {
				j, err := st.Job(cmd.Context(), id)
				if errors.Is(err, sluice.ErrNotFound) {
					return usageError("no job %q in %s (sluice jobs lists them); nothing deleted", id, path)
				}
				if err != nil {
					return err
				}
				jobs = append(jobs, j)
			}
			return deleteJobs(cmd.Context(), e, st, path, jobs)
		},
	}
	cmd.Flags().StringVar(&storeFlag, "store", "", storeUsage)
	return cmd
}

func newJobsPruneCmd(e *env) *cobra.Command {
	var storeFlag, olderThan string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune --older-than 30d",
		Short: "Delete the jobs not updated for a while, and give the space back",
		Long: `prune deletes every job whose last update is older than --older-than (a duration such as
30d, 12h or 90m), except those a live process holds. --dry-run lists them only.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			age, err := parseAge(olderThan)
			if err != nil {
				return err
			}
			st, path, err := openExistingStore(cmd.Context(), e, storeFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			all, err := st.Jobs(cmd.Context(), "")
			if err != nil {
				return err
			}
			cutoff := time.Now().Add(-age)
			var old []*sluice.Job
			for _, j := range all {
				if j.UpdatedAt.Before(cutoff) && !jobHeld(cmd.Context(), st, path, j.ID) {
					old = append(old, j)
				}
			}
			if len(old) == 0 {
				fmt.Fprintf(e.stdout, "no job older than %s\n", olderThan)
				return nil
			}
			if dryRun {
				for _, j := range old {
					fmt.Fprintf(e.stdout, "would delete %s (%s, updated %s)\n", j.ID, shownState(cmd.Context(), st, path, j), j.UpdatedAt.Local().Format("2006-01-02 15:04"))
				}
				return nil
			}
			return deleteJobs(cmd.Context(), e, st, path, old)
		},
	}
	cmd.Flags().StringVar(&storeFlag, "store", "", storeUsage)
	cmd.Flags().StringVar(&olderThan, "older-than", "", "delete jobs not updated for this long: 30d, 12h, 90m (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list the jobs that would be deleted, delete nothing")
	return cmd
}

// parseAge reads a duration that may be given in days ("30d").
func parseAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, usageError("--older-than is required (e.g. --older-than 30d)")
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err == nil && n > 0 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, usageError("--older-than %q: want a positive duration such as 30d, 12h or 90m", s)
}

// deleteJobs deletes the jobs, refusing any that a live process holds, then compacts the
// store and says how much space that gave back.
func deleteJobs(ctx context.Context, e *env, st store, path string, jobs []*sluice.Job) error {
	for _, j := range jobs {
		if jobHeld(ctx, st, path, j.ID) {
			return usageError("job %s is running in another process: stop it first; nothing deleted", j.ID)
		}
	}
	sq, isFile := st.(*sqlite.Store)
	var before int64
	if isFile {
		before = storeSize(path)
	}
	for _, j := range jobs {
		if err := st.DeleteJob(ctx, j.ID); err != nil {
			return err
		}
		if isFile {
			_ = os.Remove(jobLockPath(path, j.ID))
		}
		fmt.Fprintf(e.stdout, "deleted %s\n", j.ID)
	}
	if !isFile {
		// PostgreSQL's autovacuum gives the space back to the database, not the disk.
		fmt.Fprintf(e.stdout, "%d jobs deleted\n", len(jobs))
		return nil
	}
	if err := sq.Compact(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d jobs deleted, %s freed\n", len(jobs), formatBytes(before-storeSize(path)))
	return nil
}

// storeSize is the size of the SQLite file and its write-ahead log.
func storeSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", max(n, 0))
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
