package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// benchScenario is one of the engine's performance targets, measured end to end: input
// file, ingest with the real tokenizer, the ledger in SQLite, the HTTP upstream client,
// and the simulator in-process.
type benchScenario struct {
	name, what  string
	requests    int
	concurrency int
	sim         sim.Config
	maxTokens   int
	// duration stops the run (drain) after this long; 0 runs every request.
	duration time.Duration
	// check judges the result against the target and says how.
	check func(r *benchResult) (pass bool, verdict string)
	// serve runs the requests as a batch through sluice serve on 127.0.0.1 and compares
	// its time with an engine run of the same file written out as sluice run does.
	serve bool
	// batch runs the requests through sluice batch against sluice serve on 127.0.0.1.
	batch bool
	// run, when set, runs the scenario over the input written for it (bench_serve.go).
	run func(ctx context.Context, sc benchScenario, dir, input string) (*benchResult, error)
}

// benchResult is what one scenario measured.
type benchResult struct {
	Scenario    string  `json:"scenario"`
	Requests    int64   `json:"requests"`     // final requests in the ledger at the end
	Sent        int64   `json:"sent"`         // requests the simulator received
	Throttled   int64   `json:"throttled"`    // of which answered 429
	Wall        float64 `json:"wall_seconds"` // from the start of ingest to the end of the run
	Throughput  float64 `json:"throughput_rps"`
	PeakRSSMB   float64 `json:"peak_rss_mb"`
	BindingRPS  float64 `json:"binding_rps,omitempty"`
	Exact       bool    `json:"exactly_once"` // every custom_id once, each with its own answer
	Pass        bool    `json:"pass"`
	Verdict     string  `json:"verdict"`
	Concurrency int     `json:"concurrency"`
	// BaselineWall is, for the serve scenario, the seconds sluice run's equivalent (ingest,
	// run, write the output file) took for the same file; Wall is then the batch's time
	// from the start of the upload to the first poll that sees it completed. Each is the
	// fastest of serveBenchRounds alternating measurements.
	BaselineWall float64 `json:"baseline_seconds,omitempty"`
	// Parts, SubmitSeconds, StepSeconds and WriteSeconds are, for the batch scenario, the
	// parts made and the client's own time: ingest and submit (split, upload, create),
	// the steps (polls and collecting results) and writing the output file.
	Parts         int     `json:"parts,omitempty"`
	SubmitSeconds float64 `json:"submit_seconds,omitempty"`
	StepSeconds   float64 `json:"step_seconds,omitempty"`
	WriteSeconds  float64 `json:"write_seconds,omitempty"`
}

func benchScenarios() []benchScenario {
	return append([]benchScenario{
		{
			name: "overhead", what: "zero-latency simulator, concurrency 256, ledger on: ≥ 20,000 requests/s",
			requests: 200_000, concurrency: 256, maxTokens: 16,
			check: func(r *benchResult) (bool, string) {
				return r.Throughput >= 20_000, fmt.Sprintf("%.0f req/s (target ≥ 20,000)", r.Throughput)
			},
		},
		{
			name: "limits", what: "hidden limits 6,000 RPM / 1,000,000 TPM, none given: ≥ 97% of the binding limit, ≤ 1% 429s over 2 minutes",
			requests: 40_000, concurrency: 256, maxTokens: 150, duration: 2 * time.Minute,
			sim:   sim.Config{RPM: 6000, TPM: 1_000_000, TTFT: 50 * time.Millisecond, PerToken: time.Millisecond, Jitter: 0.3},
			check: limitsCheck(0.97, 0.01),
		},
		{
			name: "limits-no-headers", what: "the same hidden limits, but the upstream sends no rate-limit headers (found by AIMD): share of the binding limit and 429s",
			requests: 40_000, concurrency: 256, maxTokens: 150, duration: 2 * time.Minute,
			sim:   sim.Config{RPM: 6000, TPM: 1_000_000, TTFT: 50 * time.Millisecond, PerToken: time.Millisecond, Jitter: 0.3, NoLimitHeaders: true},
			check: limitsCheck(0.90, 0.05),
		},
		{
			name: "littles-law", what: "latency 200 ms, concurrency 256, no limits: ≥ 98% of 1,280 req/s over 2 minutes",
			requests: 200_000, concurrency: 256, maxTokens: 16, duration: 2 * time.Minute,
			sim: sim.Config{TTFT: 200 * time.Millisecond},
			check: func(r *benchResult) (bool, string) {
				return r.Throughput >= 0.98*1280, fmt.Sprintf("%.0f req/s = %.1f%% of 1,280 (target ≥ 98%%)", r.Throughput, 100*r.Throughput/1280)
			},
		},
		{
			name: "memory", what: "a 1,000,000-line input: peak RSS ≤ 150 MB",
			requests: 1_000_000, concurrency: 256, maxTokens: 16,
			check: func(r *benchResult) (bool, string) {
				return r.PeakRSSMB <= 150, fmt.Sprintf("peak RSS %.0f MB (target ≤ 150 MB), %.0f req/s", r.PeakRSSMB, r.Throughput)
			},
		},
		{
			name: "faults", what: "10,000 requests, 5% 500s, 2% resets, 1% hangs, 1% truncated: every request exactly once with its own answer",
			requests: 10_000, concurrency: 256, maxTokens: 16,
			sim: sim.Config{Seed: 7, Error5xx: 0.05, Reset: 0.02, Hang: 0.01, Truncate: 0.01},
			check: func(r *benchResult) (bool, string) {
				return r.Exact, fmt.Sprintf("exactly once with own answers: %v; %d sent for %d requests", r.Exact, r.Sent, r.Requests)
			},
		},
		{
			name: "serve", what: "a 100,000-line batch through sluice serve (HTTP on 127.0.0.1), zero-latency simulator, concurrency 256: ≤ 1.25× the time of sluice run on the same file, peak RSS ≤ 200 MB",
			requests: 100_000, concurrency: 256, maxTokens: 16, serve: true,
			check: func(r *benchResult) (bool, string) {
				ratio := r.Wall / r.BaselineWall
				return r.Exact && ratio <= 1.25 && r.PeakRSSMB <= 200,
					fmt.Sprintf("batch %.2fs vs sluice run %.2fs = %.2f× (target ≤ 1.25×), peak RSS %.0f MB (target ≤ 200 MB), exactly once: %v",
						r.Wall, r.BaselineWall, ratio, r.PeakRSSMB, r.Exact)
			},
		},
		{
			name: "batch", what: "a 200,000-line file through sluice batch (4 parts) against sluice serve on 127.0.0.1, zero-latency simulator: every request exactly once, sluice batch's own work (ingest, split, upload, polls, collecting, output; serve shares the machine) at ≥ 10,000 requests/s, so that a 1M-line file is in and out in under two minutes, peak RSS (serve included) ≤ 300 MB",
			requests: 200_000, concurrency: 256, maxTokens: 16, batch: true,
			check: func(r *benchResult) (bool, string) {
				own := r.SubmitSeconds + r.StepSeconds + r.WriteSeconds
				rate := float64(r.Requests) / own
				return r.Exact && rate >= 10_000 && r.PeakRSSMB <= 300,
					fmt.Sprintf("%d parts in %.2fs; sluice batch's own work %.2fs = %.0f req/s (submit %.2fs, polls and collecting %.2fs, output %.2fs; target ≥ 10,000), peak RSS %.0f MB (target ≤ 300 MB), exactly once: %v",
						r.Parts, r.Wall, own, rate, r.SubmitSeconds, r.StepSeconds, r.WriteSeconds, r.PeakRSSMB, r.Exact)
			},
		},
		serveMemScenario(),
	}, slices.Concat(paceScenarios(), serveBenchScenarios(), workerBenchScenarios(), gatewayBenchScenarios())...)
}

// limitsCheck judges a rate-limit scenario: the share of the binding limit achieved and
// the share of requests answered 429.
func limitsCheck(minShare, maxThrottled float64) func(r *benchResult) (bool, string) {
	return func(r *benchResult) (bool, string) {
		share := r.Throughput / r.BindingRPS
		throttled := float64(r.Throttled) / float64(max(1, r.Sent))
		return share >= minShare && throttled <= maxThrottled,
			fmt.Sprintf("%.1f%% of the binding %.1f req/s, %.2f%% answered 429 (targets ≥ %.0f%%, ≤ %.0f%%)",
				100*share, r.BindingRPS, 100*throttled, 100*minShare, 100*maxThrottled)
	}
}

func newBenchCmd(e *env) *cobra.Command {
	var jsonOut bool
	var requests int
	var dir string
	cmd := &cobra.Command{
		Use:   "bench [SCENARIO...]",
		Short: "Measure the engine against its performance targets (in-process simulator)",
		Long: `Bench runs the engine's performance scenarios end to end against the in-process simulator
and says whether each meets its target. Scenarios: ` + strings.Join(benchNames(), ", ") + `
(default: all but memory, which takes a minute, and serve and batch, whose peak RSS is
only meaningful alone). Peak RSS is the whole process's, simulator included.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			scens, err := pickScenarios(args)
			if err != nil {
				return err
			}
			var results []*benchResult
			failed := false
			for _, sc := range scens {
				if requests > 0 {
					sc.requests = requests
				}
				fmt.Fprintf(e.stderr, "bench %s: %s\n", sc.name, sc.what)
				r, err := runBench(cmd.Context(), sc, dir)
				if err != nil {
					return fmt.Errorf("bench %s: %w", sc.name, err)
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
				return &exitCodeError{code: exitFailed, err: fmt.Errorf("some targets were missed")}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the results as JSON")
	cmd.Flags().IntVarP(&requests, "requests", "n", 0, "override the scenario's request count")
	cmd.Flags().StringVar(&dir, "dir", "", "where to put the input, ledger and output (default a temporary directory, removed after)")
	return cmd
}

func benchNames() []string {
	var names []string
	for _, s := range benchScenarios() {
		names = append(names, s.name)
	}
	return names
}

func pickScenarios(args []string) ([]benchScenario, error) {
	all := benchScenarios()
	if len(args) == 0 {
		return slices.DeleteFunc(all, func(s benchScenario) bool {
			return s.name == "memory" || s.name == "serve" || s.name == "batch" || s.run != nil
		}), nil
	}
	var out []benchScenario
	for _, a := range args {
		i := slices.IndexFunc(all, func(s benchScenario) bool { return s.name == a })
		if i < 0 {
			return nil, usageError("no bench scenario %q (have %s)", a, strings.Join(benchNames(), ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// runBench runs one scenario in a fresh directory and measures it.
func runBench(ctx context.Context, sc benchScenario, dir string) (*benchResult, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	input := filepath.Join(dir, sc.name+".jsonl")
	if err := writeBenchRequests(input, sc.requests, sc.maxTokens); err != nil {
		return nil, err
	}
	if sc.run != nil {
		return sc.run(ctx, sc, dir, input)
	}
	if sc.serve {
		return runServeBench(ctx, sc, dir, input)
	}
	if sc.batch {
		return runBatchBench(ctx, sc, dir, input)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, sc.name+".db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	job := &sluice.Job{ID: newJobID(), State: sluice.JobRunning, Input: input, Options: []byte(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		return nil, err
	}
	s := sim.New(sc.sim)
	defer s.Close()
	up, err := simClient(s)
	if err != nil {
		return nil, err
	}
	cfg := sluice.Config{Concurrency: sc.concurrency}
	if sc.sim.Hang > 0 {
		cfg.Timeout = 2 * time.Second // hung requests are cut off and retried
		cfg.BackoffBase, cfg.BackoffMax = 10*time.Millisecond, 200*time.Millisecond
	}
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		return nil, err
	}
	in, err := os.Open(input)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	runtime.GC()
	start := time.Now()
	run, err := eng.Start(ctx, job, ingest.NewSource(bufio.NewReaderSize(in, 1<<20), tokens.Default()))
	if err != nil {
		return nil, err
	}
	if sc.duration > 0 {
		t := time.AfterFunc(sc.duration, func() { _ = run.Stop(context.Background()) })
		defer t.Stop()
	}
	runErr := run.Wait()
	wall := time.Since(start)
	if runErr != nil && sc.duration == 0 {
		return nil, runErr
	}
	stats, err := st.Stats(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	simStats := s.Stats()
	r := &benchResult{
		Scenario: sc.name, Concurrency: sc.concurrency,
		Requests: stats.Done + stats.Failed, Sent: simStats.Requests, Throttled: simStats.Throttled,
		Wall: wall.Seconds(), PeakRSSMB: peakRSSMB(),
	}
	r.Throughput = float64(r.Requests) / r.Wall
	if sc.sim.RPM > 0 || sc.sim.TPM > 0 {
		r.BindingRPS = bindingRate(sc.sim, stats, sc.maxTokens)
	}
	if sc.duration == 0 {
		if r.Exact, err = checkOwnAnswers(ctx, st, job.ID, sc.requests); err != nil {
			return nil, err
		}
	}
	r.Pass, r.Verdict = sc.check(r)
	return r, nil
}

// bindingRate is the request rate the simulator's hidden limits allow: its RPM, or its
// TPM over the tokens each request counts against it (prompt plus max_tokens, as OpenAI
// counts them at admission), whichever is lower.
func bindingRate(c sim.Config, stats *sluice.Stats, maxTokens int) float64 {
	rate := float64(c.RPM) / 60
	if c.TPM > 0 && stats.Done > 0 {
		perReq := float64(stats.Usage.PromptTokens)/float64(stats.Done) + float64(maxTokens)
		if tr := float64(c.TPM) / 60 / perReq; rate == 0 || tr < rate {
			rate = tr
		}
	}
	return rate
}

// checkOwnAnswers reads the job's output and checks every custom_id appears exactly once,
// in order, and that every done request carries its own answer (the simulator echoes the
// prompt, which names the request).
func checkOwnAnswers(ctx context.Context, st sluice.Store, jobID string, n int) (bool, error) {
	i := 0
	ok := true
	err := st.Results(ctx, jobID, 0, 0, func(res *sluice.Result) error {
		i++
		id := benchID(i)
		if res.CustomID != id {
			ok = false
		}
		if res.State == sluice.StateDone && !strings.Contains(string(res.Body), "ask "+id) {
			ok = false
		}
		return nil
	})
	return ok && i == n, err
}

func benchID(i int) string { return fmt.Sprintf("b%07d", i) }

// writeBenchRequests writes n chat requests of mixed prompt lengths, each naming itself.
func writeBenchRequests(path string, n, maxTokens int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	pad := []string{"", " Please answer briefly.", " Consider the context carefully and answer in one short paragraph, citing the key facts."}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, `{"custom_id":"%s","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ask %s%s"}],"max_tokens":%d}}`+"\n",
			benchID(i), benchID(i), pad[i%len(pad)], maxTokens)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// serveBenchKey is the client key of the serve scenario's server.
const serveBenchKey = "sk-bench"

// serveBenchRounds is how many times the serve scenario measures each side, alternating,
// keeping the fastest of each: on a shared machine one measurement of each can be off by
// more than the margin being checked.
const serveBenchRounds = 2

// runServeBench runs the serve scenario: the input as sluice run would run it (ingest, run,
// output file), then as a batch through sluice serve over HTTP on 127.0.0.1, each over its
// own zero-latency simulator and a fresh store, serveBenchRounds times.
func runServeBench(ctx context.Context, sc benchScenario, dir, input string) (*benchResult, error) {
	var best *benchResult
	var base time.Duration
	for round := range serveBenchRounds {
		name := fmt.Sprintf("%s%d", sc.name, round+1)
		b, err := benchEngineRun(ctx, sc, dir, name, input)
		if err != nil {
			return nil, fmt.Errorf("sluice run: %w", err)
		}
		r, err := benchServeRun(ctx, sc, dir, name, input)
		if err != nil {
			return nil, fmt.Errorf("sluice serve: %w", err)
		}
		if base == 0 || b < base {
			base = b
		}
		if best == nil || r.Wall < best.Wall || !r.Exact {
			r.Exact = r.Exact && (best == nil || best.Exact)
			best = r
		}
	}
	best.BaselineWall = base.Seconds()
	best.PeakRSSMB = peakRSSMB()
	best.Pass, best.Verdict = sc.check(best)
	return best, nil
}

// benchEngineRun is sluice run on input: ingest, run and write the output file.
func benchEngineRun(ctx context.Context, sc benchScenario, dir, name, input string) (time.Duration, error) {
	st, err := sqlite.Open(ctx, filepath.Join(dir, name+"-run.db"))
	if err != nil {
		return 0, err
	}
	defer st.Close()
	job := &sluice.Job{ID: newJobID(), State: sluice.JobRunning, Input: input, Options: []byte(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		return 0, err
	}
	s := sim.New(sc.sim)
	defer s.Close()
	up, err := simClient(s)
	if err != nil {
		return 0, err
	}
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: sc.concurrency})
	if err != nil {
		return 0, err
	}
	in, err := os.Open(input)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	runtime.GC()
	start := time.Now()
	run, err := eng.Start(ctx, job, ingest.NewSource(bufio.NewReaderSize(in, 1<<20), tokens.Default()))
	if err != nil {
		return 0, err
	}
	if err := run.Wait(); err != nil {
		return 0, err
	}
	out := filepath.Join(dir, name+"-run.output.jsonl")
	if _, err := writeOutputFiles(ctx, st, job.ID, out, filepath.Join(dir, name+"-run.errors.jsonl")); err != nil {
		return 0, err
	}
	wall := time.Since(start)
	exact, err := checkOwnAnswers(ctx, st, job.ID, sc.requests)
	if err != nil {
		return 0, err
	}
	if !exact {
		return 0, errors.New("the run's results are not every request once with its own answer")
	}
	return wall, nil
}

// benchServeRun uploads input to a sluice serve on 127.0.0.1, creates a batch, polls it to
// completed and checks its output file.
func benchServeRun(ctx context.Context, sc benchScenario, dir, name, input string) (*benchResult, error) {
	base, s, stop, err := startBenchServe(ctx, sc, dir, name)
	if err != nil {
		return nil, err
	}
	defer stop()
	c := &benchClient{base: base, http: &http.Client{}}

	runtime.GC()
	start := time.Now()
	fileID, err := c.upload(ctx, input)
	if err != nil {
		return nil, err
	}
	var b struct {
		ID            string `json:"id"`
		Status        string `json:"status"`
		OutputFileID  string `json:"output_file_id"`
		RequestCounts struct {
			Completed int64 `json:"completed"`
			Failed    int64 `json:"failed"`
		} `json:"request_counts"`
	}
	create := fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h"}`, fileID)
	if err := c.do(ctx, http.MethodPost, "/batches", "application/json", strings.NewReader(create), &b); err != nil {
		return nil, err
	}
	tick := time.NewTicker(10 * time.Millisecond) // polling is the client protocol
	defer tick.Stop()
	for b.Status != "completed" {
		switch b.Status {
		case "failed", "expired", "cancelled":
			return nil, fmt.Errorf("batch %s ended %s", b.ID, b.Status)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err := c.do(ctx, http.MethodGet, "/batches/"+b.ID, "", nil, &b); err != nil {
			return nil, err
		}
	}
	wall := time.Since(start)
	r := &benchResult{
		Scenario: sc.name, Concurrency: sc.concurrency,
		Requests: b.RequestCounts.Completed + b.RequestCounts.Failed, Sent: s.Stats().Requests,
		Wall: wall.Seconds(),
	}
	r.Throughput = float64(r.Requests) / r.Wall
	if r.Exact, err = c.checkOutput(ctx, b.OutputFileID, sc.requests); err != nil {
		return nil, err
	}
	return r, nil
}

// startBenchServe starts a sluice serve on 127.0.0.1 over its own zero-latency simulator
// and a fresh store, and returns its base URL; stop shuts it down.
func startBenchServe(ctx context.Context, sc benchScenario, dir, name string) (base string, s *sim.Server, stop func(), err error) {
	st, err := sqlite.Open(ctx, filepath.Join(dir, name+".db"))
	if err != nil {
		return "", nil, nil, err
	}
	s = sim.New(sc.sim)
	fail := func(err error) (string, *sim.Server, func(), error) {
		s.Close()
		st.Close()
		return "", nil, nil, err
	}
	up, err := simClient(s)
	if err != nil {
		return fail(err)
	}
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: sc.concurrency})
	if err != nil {
		return fail(err)
	}
	svc, err := service.New(ctx, service.Config{
		Store: st, FilesDir: filepath.Join(dir, name+".files"),
		Routes:    []service.Route{{Name: simUpstreamName, Engine: eng}},
		KeyHashes: []string{service.HashKey(serveBenchKey)}, MaxLines: int64(sc.requests),
	})
	if err != nil {
		return fail(err)
	}
	srv := sluicehttp.NewServer(svc, nil)
	base, stop, err = listenServe(ctx, srv, func() { s.Close(); st.Close() })
	if err != nil {
		return fail(err)
	}
	return base, s, stop, nil
}

// listenServe serves srv on 127.0.0.1 for a scenario and returns its /v1 base URL, and the
// function that stops it, closes srv and then calls closed. If it cannot listen, it closes
// srv and returns the error (closed is the caller's to call).
func listenServe(ctx context.Context, srv *sluicehttp.Server, closed func()) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, errors.Join(err, srv.Close(ctx))
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	stop = func() {
		_ = hs.Shutdown(ctx)
		<-served //nolint:errcheck // always ErrServerClosed after Shutdown
		_ = srv.Close(ctx)
		closed()
	}
	return "http://" + ln.Addr().String() + "/v1", stop, nil
}

// benchClient is a minimal client of sluice serve's API.
type benchClient struct {
	base string
	http *http.Client
	key  string // "": serveBenchKey
}

func (c *benchClient) do(ctx context.Context, method, path, contentType string, body io.Reader, into any) error {
	resp, err := c.send(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(into)
}

func (c *benchClient) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cmp.Or(c.key, serveBenchKey))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	return resp, nil
}

// upload streams the file at path to /v1/files as a multipart form.
func (c *benchClient) upload(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	written := make(chan struct{})
	go func() {
		defer close(written)
		err := mw.WriteField("purpose", "batch")
		if err == nil {
			var part io.Writer
			if part, err = mw.CreateFormFile("file", filepath.Base(path)); err == nil {
				_, err = io.Copy(part, f)
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	var obj struct {
		ID string `json:"id"`
	}
	err = c.do(ctx, http.MethodPost, "/files", mw.FormDataContentType(), pr, &obj)
	pr.CloseWithError(errors.New("upload ended")) // ends the writer if the request did not read it all
	<-written
	return obj.ID, err
}

// checkOutput downloads the output file and checks that it has every bench request once,
// each with its own answer.
func (c *benchClient) checkOutput(ctx context.Context, fileID string, n int) (bool, error) {
	resp, err := c.send(ctx, http.MethodGet, "/files/"+fileID+"/content", "", nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	seen := make([]bool, n+1)
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			CustomID string `json:"custom_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return false, fmt.Errorf("output line %d: %w", lines+1, err)
		}
		lines++
		var i int
		if _, err := fmt.Sscanf(line.CustomID, "b%07d", &i); err != nil || i < 1 || i > n || seen[i] ||
			!bytes.Contains(sc.Bytes(), []byte("ask "+line.CustomID)) {
			return false, sc.Err()
		}
		seen[i] = true
	}
	return lines == n, sc.Err()
}
