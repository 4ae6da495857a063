package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/timeline"
	"github.com/sluice-llm/sluice/ui"
)

const (
	// recorderCloseTimeout bounds the last write of a run's timeline.
	recorderCloseTimeout = 5 * time.Second
	defaultUIListen      = "127.0.0.1:8090"
	// adminKeyEnv holds the key that sees every batch on serve's dashboard.
	adminKeyEnv = "SLUICE_ADMIN_KEY"
	// dashboardBatches is how many of a key's batches serve's dashboard lists.
	dashboardBatches = 100
)

// withRecorder returns obs joined with a timeline Recorder writing to st, started, and
// the function that writes what is left and stops it; obs alone when st keeps no
// timelines. A timeline that cannot be written is a warning, never a failed run.
func withRecorder(e *env, st sluice.Store, obs sluice.Observer) (sluice.Observer, func()) {
	ts, ok := st.(sluice.TimelineStore)
	if !ok {
		return obs, func() {}
	}
	rec := timeline.New(ts, timeline.Config{})
	rec.Start()
	return timeline.Join(obs, rec), func() {
		ctx, cancel := context.WithTimeout(context.Background(), recorderCloseTimeout)
		defer cancel()
		if err := rec.Close(ctx); err != nil {
			fmt.Fprintln(e.stderr, "warning: timeline:", err)
		}
	}
}

func newUICmd(e *env) *cobra.Command {
	var store, listen, prices string
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve the dashboard of a store's jobs",
		Long: `ui serves the dashboard of the jobs in a store written by sluice run, batch and pipeline:
their progress, ETA and cost, and per job charts over time (throughput, latency, tokens and
$, 429s and errors by code, the limiter and the breaker) and the failed requests. It reads
the store only, and may run beside the commands that write it.`,
		Example: `  sluice ui                                  # the default store, on http://127.0.0.1:8090
  sluice ui --store jobs.db --listen 127.0.0.1:9000
  sluice ui --store postgres://localhost/sluice`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runUI(cmd.Context(), e, store, listen, prices) },
	}
	fs := cmd.Flags()
	fs.StringVar(&store, "store", "", "the store: a SQLite file or a postgres:// URL (default $SLUICE_STORE or the user's data directory)")
	fs.StringVar(&listen, "listen", defaultUIListen, "the address to serve on")
	fs.StringVar(&prices, "prices", "", "a prices file, for the cost of jobs run without a timeline")
	return cmd
}

func runUI(ctx context.Context, e *env, store, listen, pricesFile string) error {
	prices, err := loadPrices(pricesFile)
	if err != nil {
		return err
	}
	st, _, err := openExistingStore(ctx, e, store) // a SQLite file or a postgres:// URL
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := ui.New(ui.Config{Store: st, Cost: prices.OnlineCost})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stderr, "sluice ui: the dashboard is on http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	in := newInterrupt(context.WithoutCancel(ctx), e, time.Second, drainSelf, "")
	defer in.stop()
	var serveErr error
	select {
	case <-in.draining:
	case <-ctx.Done():
	case serveErr = <-served:
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	shutErr := hs.Shutdown(shutCtx)
	if serveErr == nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	return errors.Join(serveErr, shutErr)
}

// withDashboard serves the Batch API of srv under /v1/ and every path the dashboard does
// not take, and the dashboard at / and /ui/. A client key sees
// its own batches, the admin key ($SLUICE_ADMIN_KEY) every batch; nobody else sees any.
func withDashboard(srv *sluicehttp.Server, st sluice.Store, cost func(string, sluice.Usage) float64) (http.Handler, error) {
	dash, err := ui.New(ui.Config{
		Store: st, Cost: cost, Title: "sluice serve",
		Authenticate: func(r *http.Request) (string, bool) {
			tenant, admin, ok := srv.Authenticate(r)
			switch {
			case !ok:
				return "", false
			case admin:
				return "", true // "": every tenant's batches
			}
			return tenant, tenant != ""
		},
		JobsOf: func(ctx context.Context, owner string) ([]*sluice.Job, error) {
			if owner == "" { // the admin key: every batch's job, newest first
				jobs, err := st.Jobs(ctx, "")
				return jobs[:min(len(jobs), dashboardBatches)], err
			}
			page, err := srv.Service().ListBatches(ctx, owner, service.ListParams{Limit: dashboardBatches})
			if err != nil {
				return nil, err
			}
			jobs := make([]*sluice.Job, 0, len(page.Data))
			for _, b := range page.Data {
				job, err := st.Job(ctx, b.ID)
				if errors.Is(err, sluice.ErrNotFound) {
					continue // validating: no job yet
				}
				if err != nil {
					return nil, err
				}
				jobs = append(jobs, job)
			}
			return jobs, nil
		},
		Owns: func(ctx context.Context, owner, id string) (bool, error) {
			_, err := srv.Service().Batch(ctx, owner, id)
			if service.ErrorCode(err) == service.ENOTFOUND {
				return false, nil
			}
			return err == nil, err
		},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler())
	mux.Handle("GET /{$}", dash)
	mux.Handle("/ui/", dash)
	return mux, nil
}

func newReportCmd(e *env) *cobra.Command {
	var storeFlag, pricesFlag, htmlFile string
	cmd := &cobra.Command{
		Use:   "report JOB",
		Short: "Print a job's report, or write it as one self-contained HTML page",
		Long: `report prints a job's report, as sluice show does; with --html FILE it writes the
dashboard's page of the job instead: its summary, charts over time and failed requests in one
HTML file with everything inline, to attach to a ticket. It works for a running job and for a
finished one, also one run before timelines existed (its charts are built from the ledger).`,
		Example: `  sluice report job_20260101_ab12cd34 --html report.html`,
		Args:    exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if htmlFile == "" {
				return runShow(cmd.Context(), e, storeFlag, pricesFlag, args[0])
			}
			return writeHTMLReport(cmd.Context(), e, storeFlag, pricesFlag, args[0], htmlFile)
		},
	}
	cmd.Flags().StringVar(&storeFlag, "store", "", "the ledger's SQLite file")
	cmd.Flags().StringVar(&pricesFlag, "prices", "", "a prices file overriding the built-in table")
	cmd.Flags().StringVar(&htmlFile, "html", "", "write the report as one self-contained HTML page to FILE")
	return cmd
}

// runShow prints a job's text report, as sluice show does.
func runShow(ctx context.Context, e *env, storeFlag, pricesFlag, id string) error {
	show := newShowCmd(e)
	show.SetArgs([]string{id, "--store", storeFlag, "--prices", pricesFlag})
	show.SetContext(ctx)
	show.SilenceUsage, show.SilenceErrors = true, true
	return show.Execute()
}

// writeHTMLReport writes a job's HTML report to file, through a temporary file renamed
// into place.
func writeHTMLReport(ctx context.Context, e *env, storeFlag, pricesFlag, id, file string) error {
	prices, err := loadPrices(pricesFlag)
	if err != nil {
		return err
	}
	st, path, err := openExistingStore(ctx, e, storeFlag)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := findJob(ctx, st, path, id); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".sluice-report-*.html")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	w := bufio.NewWriter(tmp)
	err = ui.WriteReport(ctx, w, id, ui.ReportConfig{Store: st, Cost: prices.OnlineCost})
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	fmt.Fprintf(e.stderr, "wrote %s\n", file)
	return nil
}
