package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/gcpolicy"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// Scenario is one of the engine's performance targets, measured end to end: input
// file, ingest with the real tokenizer, the ledger in SQLite, the HTTP upstream client,
// and the simulator in-process.
type Scenario struct {
	// Name names the scenario on the command line; What says what it measures and its
	// target.
	Name, What string
	// Requests is how many requests the scenario's input holds; Concurrency the engine's.
	Requests    int
	Concurrency int
	sim         sim.Config
	maxTokens   int
	// duration stops the run (drain) after this long; 0 runs every request.
	duration time.Duration
	// check judges the result against the target and says how.
	check func(r *Result) (pass bool, verdict string)
	// serve runs the requests as a batch through sluice serve on 127.0.0.1 and compares
	// its time with an engine run of the same file written out as sluice run does.
	serve bool
	// batch runs the requests through sluice batch against sluice serve on 127.0.0.1.
	batch bool
	// run, when set, runs the scenario over the input written for it (serve.go).
	run func(ctx context.Context, sc Scenario, dir, input string) (*Result, error)
	// exe is Options.Exe; profile, when set, receives the CPU profile of the part of the
	// scenario that measures sluice alone.
	exe      string
	storeURL string
	profile  io.Writer
	// gcPolicy is Options.GCPolicy.
	gcPolicy bool
}

// Result is what one scenario measured.
type Result struct {
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
	// BareRPS and NaiveRPS are, for the wire scenario, the request rates of a bare
	// keep-alive HTTP loop and of the naive openai-go + errgroup client against the same
	// server; CPUMicros, NaiveCPUMicros and BareCPUMicros the CPU time each spent per
	// request, in µs (getrusage of the process: the server runs in a process of its own).
	BareRPS        float64 `json:"bare_rps,omitempty"`
	NaiveRPS       float64 `json:"naive_rps,omitempty"`
	CPUMicros      float64 `json:"cpu_us_per_request,omitempty"`
	NaiveCPUMicros float64 `json:"naive_cpu_us_per_request,omitempty"`
	BareCPUMicros  float64 `json:"bare_cpu_us_per_request,omitempty"`
}

func Scenarios() []Scenario {
	return append([]Scenario{
		{
			Name: "overhead", What: "zero-latency simulator, concurrency 256, ledger on: ≥ 20,000 requests/s",
			Requests: 200_000, Concurrency: 256, maxTokens: 16,
			check: func(r *Result) (bool, string) {
				return r.Throughput >= 20_000, fmt.Sprintf("%.0f req/s (target ≥ 20,000)", r.Throughput)
			},
		},
		{
			Name: "limits", What: "hidden limits 6,000 RPM / 1,000,000 TPM, none given: ≥ 97% of the binding limit, ≤ 1% 429s over 2 minutes",
			Requests: 40_000, Concurrency: 256, maxTokens: 150, duration: 2 * time.Minute,
			sim:   sim.Config{RPM: 6000, TPM: 1_000_000, TTFT: 50 * time.Millisecond, PerToken: time.Millisecond, Jitter: 0.3},
			check: limitsCheck(0.97, 0.01),
		},
		{
			Name: "limits-no-headers", What: "the same hidden limits, but the upstream sends no rate-limit headers (found by AIMD): share of the binding limit and 429s",
			Requests: 40_000, Concurrency: 256, maxTokens: 150, duration: 2 * time.Minute,
			sim:   sim.Config{RPM: 6000, TPM: 1_000_000, TTFT: 50 * time.Millisecond, PerToken: time.Millisecond, Jitter: 0.3, NoLimitHeaders: true},
			check: limitsCheck(0.90, 0.05),
		},
		{
			Name: "littles-law", What: "latency 200 ms, concurrency 256, no limits: ≥ 98% of 1,280 req/s over 2 minutes",
			Requests: 200_000, Concurrency: 256, maxTokens: 16, duration: 2 * time.Minute,
			sim: sim.Config{TTFT: 200 * time.Millisecond},
			check: func(r *Result) (bool, string) {
				return r.Throughput >= 0.98*1280, fmt.Sprintf("%.0f req/s = %.1f%% of 1,280 (target ≥ 98%%)", r.Throughput, 100*r.Throughput/1280)
			},
		},
		{
			Name: "memory", What: "a 1,000,000-line input: peak RSS ≤ 150 MB",
			Requests: 1_000_000, Concurrency: 256, maxTokens: 16,
			check: func(r *Result) (bool, string) {
				return r.PeakRSSMB <= 150, fmt.Sprintf("peak RSS %.0f MB (target ≤ 150 MB), %.0f req/s", r.PeakRSSMB, r.Throughput)
			},
		},
		{
			Name: "faults", What: "10,000 requests, 5% 500s, 2% resets, 1% hangs, 1% truncated: every request exactly once with its own answer",
			Requests: 10_000, Concurrency: 256, maxTokens: 16,
			sim: sim.Config{Seed: 7, Error5xx: 0.05, Reset: 0.02, Hang: 0.01, Truncate: 0.01},
			check: func(r *Result) (bool, string) {
				return r.Exact, fmt.Sprintf("exactly once with own answers: %v; %d sent for %d requests", r.Exact, r.Sent, r.Requests)
			},
		},
		{
			Name: "serve", What: "a 100,000-line batch through sluice serve (HTTP on 127.0.0.1), zero-latency simulator, concurrency 256: ≤ 1.25× the time of sluice run on the same file, peak RSS ≤ 200 MB",
			Requests: 100_000, Concurrency: 256, maxTokens: 16, serve: true,
			check: func(r *Result) (bool, string) {
				ratio := r.Wall / r.BaselineWall
				return r.Exact && ratio <= 1.25 && r.PeakRSSMB <= 200,
					fmt.Sprintf("batch %.2fs vs sluice run %.2fs = %.2f× (target ≤ 1.25×), peak RSS %.0f MB (target ≤ 200 MB), exactly once: %v",
						r.Wall, r.BaselineWall, ratio, r.PeakRSSMB, r.Exact)
			},
		},
		{
			Name: "batch", What: "a 200,000-line file through sluice batch (4 parts) against sluice serve on 127.0.0.1, zero-latency simulator: every request exactly once, sluice batch's own work (ingest, split, upload, polls, collecting, output; serve shares the machine) at ≥ 10,000 requests/s, so that a 1M-line file is in and out in under two minutes, peak RSS (serve included) ≤ 300 MB",
			Requests: 200_000, Concurrency: 256, maxTokens: 16, batch: true,
			check: func(r *Result) (bool, string) {
				own := r.SubmitSeconds + r.StepSeconds + r.WriteSeconds
				rate := float64(r.Requests) / own
				return r.Exact && rate >= 10_000 && r.PeakRSSMB <= 300,
					fmt.Sprintf("%d parts in %.2fs; sluice batch's own work %.2fs = %.0f req/s (submit %.2fs, polls and collecting %.2fs, output %.2fs; target ≥ 10,000), peak RSS %.0f MB (target ≤ 300 MB), exactly once: %v",
						r.Parts, r.Wall, own, rate, r.SubmitSeconds, r.StepSeconds, r.WriteSeconds, r.PeakRSSMB, r.Exact)
			},
		},
		serveMemScenario(),
		wireScenario(),
	}, slices.Concat(paceScenarios(), serveBenchScenarios(), workerBenchScenarios(), gatewayScenarios())...)
}

// limitsCheck judges a rate-limit scenario: the share of the binding limit achieved and
// the share of requests answered 429.
func limitsCheck(minShare, maxThrottled float64) func(r *Result) (bool, string) {
	return func(r *Result) (bool, string) {
		share := r.Throughput / r.BindingRPS
		throttled := float64(r.Throttled) / float64(max(1, r.Sent))
		return share >= minShare && throttled <= maxThrottled,
			fmt.Sprintf("%.1f%% of the binding %.1f req/s, %.2f%% answered 429 (targets ≥ %.0f%%, ≤ %.0f%%)",
				100*share, r.BindingRPS, 100*throttled, 100*minShare, 100*maxThrottled)
	}
}

// Names lists the scenarios' names, in the order Scenarios gives them.
func Names() []string {
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return names
}

// ErrUnknown is returned by Pick for a name that is no scenario's.
var ErrUnknown = errors.New("no such bench scenario")

// Pick returns the scenarios named, in the order given; with no names, every scenario
// but those that take long alone or whose peak RSS is only meaningful alone (memory,
// serve, batch and the custom ones such as wire and serve-mem).
func Pick(names []string) ([]Scenario, error) {
	all := Scenarios()
	if len(names) == 0 {
		return slices.DeleteFunc(all, func(s Scenario) bool {
			return s.Name == "memory" || s.Name == "serve" || s.Name == "batch" || s.run != nil
		}), nil
	}
	var out []Scenario
	for _, a := range names {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == a })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q (have %s)", ErrUnknown, a, strings.Join(Names(), ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Options are the settings of one bench run.
type Options struct {
	// Dir holds the inputs, ledgers and outputs; "" means a temporary directory, removed
	// after.
	Dir string
	// Requests overrides the scenario's request count when positive.
	Requests int
	// Duration overrides, when positive, how long a timed scenario (littles-law, limits…)
	// runs before it is stopped.
	Duration time.Duration
	// Exe is the sluice binary, which the scenarios that need a simulator in a process of
	// its own run as "Exe sim …" (os.Args[0] in the sluice command).
	Exe string
	// StoreURL is the PostgreSQL store the workers scenarios share between processes
	// (a postgres:// URL; each scenario works in a schema of its own, dropped after).
	StoreURL string
	// CPUProfile, when set, receives a CPU profile (pprof) of the scenario: of sluice's
	// part alone in the wire scenario, of the whole scenario in the others.
	CPUProfile io.Writer
	// GCPolicy runs sluice's part of the scenarios that stand for sluice run (the engine
	// runs in this process, and wire's sluice run) under the collector's policy that sluice
	// run applies (gcpolicy), as it does when GOGC and GOMEMLIMIT are not set.
	GCPolicy bool
}

// underGCPolicy applies the collector's policy of sluice run when sc says so, and returns
// the function that restores the settings it replaced.
func underGCPolicy(sc Scenario) (restore func()) {
	if !sc.gcPolicy {
		return func() {}
	}
	return gcpolicy.Apply()
}

// Run runs one scenario and measures it.
func Run(ctx context.Context, sc Scenario, o Options) (*Result, error) {
	if o.Requests > 0 {
		sc.Requests = o.Requests
	}
	if o.Duration > 0 && sc.duration > 0 {
		sc.duration = o.Duration
	}
	sc.exe, sc.storeURL, sc.gcPolicy = o.Exe, o.StoreURL, o.GCPolicy
	if o.CPUProfile != nil {
		if sc.Name == "wire" {
			sc.profile = o.CPUProfile
		} else {
			if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
				return nil, fmt.Errorf("cpu profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	input := filepath.Join(dir, sc.Name+".jsonl")
	if err := writeBenchRequests(input, sc.Requests, sc.maxTokens); err != nil {
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
	st, err := sqlite.Open(ctx, filepath.Join(dir, sc.Name+".db"))
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
	cfg := sluice.Config{Concurrency: sc.Concurrency}
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
	defer underGCPolicy(sc)()
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
	r := &Result{
		Scenario: sc.Name, Concurrency: sc.Concurrency,
		Requests: stats.Done + stats.Failed, Sent: simStats.Requests, Throttled: simStats.Throttled,
		Wall: wall.Seconds(), PeakRSSMB: peakRSSMB(),
	}
	r.Throughput = float64(r.Requests) / r.Wall
	if sc.sim.RPM > 0 || sc.sim.TPM > 0 {
		r.BindingRPS = bindingRate(sc.sim, stats, sc.maxTokens)
	}
	if sc.duration == 0 {
		if r.Exact, err = checkOwnAnswers(ctx, st, job.ID, sc.Requests); err != nil {
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
