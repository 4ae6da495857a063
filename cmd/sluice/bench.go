package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice/internal/bench"
	"github.com/sluice-llm/sluice/internal/gcpolicy"
)

func newBenchCmd(e *env) *cobra.Command {
	var jsonOut bool
	var o bench.Options
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "bench [SCENARIO...]",
		Short: "Measure the engine against its performance targets (simulator)",
		Long: `Bench runs the engine's performance scenarios end to end against the simulator and says
whether each meets its target. Scenarios: ` + strings.Join(bench.Names(), ", ") + `
(default: all but memory, which takes a minute, and serve, batch, wire and the serve-*
scenarios, whose figures are only meaningful alone). Peak RSS is the whole process's,
simulator included, except in wire, whose simulator runs in a process of its own.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			scens, err := bench.Pick(args)
			if errors.Is(err, bench.ErrUnknown) {
				return usageError("%v", err)
			}
			if err != nil {
				return err
			}
			if cpuProfile != "" && len(scens) != 1 {
				return usageError("--cpuprofile profiles one scenario: name one")
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer f.Close()
				o.CPUProfile = f
			}
			o.StoreURL = e.getenv("SLUICE_STORE")
			o.GCPolicy = !gcpolicy.Chosen(e.getenv("GOGC"), e.getenv("GOMEMLIMIT"))
			if o.Exe, err = os.Executable(); err != nil {
				o.Exe = os.Args[0]
			}
			var results []*bench.Result
			failed := false
			for _, sc := range scens {
				fmt.Fprintf(e.stderr, "bench %s: %s\n", sc.Name, sc.What)
				r, err := bench.Run(cmd.Context(), sc, o)
				if err != nil {
					return fmt.Errorf("bench %s: %w", sc.Name, err)
				}
				results = append(results, r)
				failed = failed || !r.Pass
				if !jsonOut {
					mark := "PASS"
					if !r.Pass {
						mark = "FAIL"
					}
					fmt.Fprintf(e.stdout, "%-12s %s  %s  (%d requests in %.1fs, peak RSS %.0f MB)\n",
						r.Scenario, mark, r.Verdict, r.Requests, r.Wall, r.PeakRSSMB)
				}
			}
			if jsonOut {
				if err := writeJSON(e.stdout, results); err != nil {
					return err
				}
			}
			if failed {
				return &exitCodeError{code: exitFailed, err: errors.New("some targets were missed")}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the results as JSON")
	cmd.Flags().IntVarP(&o.Requests, "requests", "n", 0, "override the scenario's request count")
	cmd.Flags().DurationVar(&o.Duration, "duration", 0, "override how long a timed scenario (littles-law, limits, …) runs")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "where to put the input, ledger and output (default a temporary directory, removed after)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file (go tool pprof): of sluice's part in wire, of the whole scenario in the others; with one scenario only")
	return cmd
}
