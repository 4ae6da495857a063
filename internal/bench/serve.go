package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sim"
)

// Multi-tenant scenarios of sluice serve (issue 11): several keys at once over HTTP on
// 127.0.0.1, each batch's output checked.
const (
	serveLoadKeys     = 4
	serveLoadBatches  = 20
	serveLoadLines    = 5000
	serveFairBatches  = 10
	serveFairLines    = 5000
	serveFairSmall    = 100
	serveFairRounds   = 5 // measurements of the small batch, idle and loaded; the median counts
	serveFairMaxRatio = 2.0
	servePoll         = 10 * time.Millisecond // how often the scenarios poll a batch
)

func serveBenchScenarios() []Scenario {
	return []Scenario{
		{
			Name: "serve-load", What: fmt.Sprintf("%d batches of %d lines from %d keys at once through sluice serve, zero-latency simulator, concurrency 256: every output exact, req/s and peak RSS",
				serveLoadBatches, serveLoadLines, serveLoadKeys),
			Requests: serveLoadLines, Concurrency: 256, maxTokens: 16, run: runServeLoadBench,
			check: func(r *Result) (bool, string) {
				return r.Exact, fmt.Sprintf("%d requests in %d batches at %.0f req/s, peak RSS %.0f MB, every output exact: %v",
					r.Requests, serveLoadBatches, r.Throughput, r.PeakRSSMB, r.Exact)
			},
		},
		{
			Name: "serve-fair", What: fmt.Sprintf("while one key runs %d batches of %d lines, another key's %d-line batch finishes within %.0f× its time on an idle server (simulator latency 200 ms, concurrency 256)",
				serveFairBatches, serveFairLines, serveFairSmall, serveFairMaxRatio),
			Requests: serveFairSmall, Concurrency: 256, maxTokens: 16, run: runServeFairBench,
			sim: sim.Config{Seed: 1, TTFT: 200 * time.Millisecond, Jitter: 0.2},
			check: func(r *Result) (bool, string) {
				ratio := r.Wall / r.BaselineWall
				return r.Exact && ratio <= serveFairMaxRatio,
					fmt.Sprintf("small batch %.3fs under load vs %.3fs idle = %.2f× (target ≤ %.0f×), outputs exact: %v",
						r.Wall, r.BaselineWall, ratio, serveFairMaxRatio, r.Exact)
			},
		},
	}
}

// serveBenchKeyN is the n-th client key of the multi-tenant scenarios.
func serveBenchKeyN(n int) string { return fmt.Sprintf("sk-bench-tenant-%d", n) }

// startTenantServe starts a sluice serve for a multi-tenant scenario: keys client keys
// (serveBenchKeyN).
func startTenantServe(ctx context.Context, sc Scenario, dir string, keys int) (base string, s *sim.Server, stop func(), err error) {
	setup := serveSetup{name: sc.Name, sim: sc.sim, concurrency: sc.Concurrency}
	for i := range keys {
		setup.keys = append(setup.keys, serveBenchKeyN(i))
	}
	return startServe(ctx, dir, setup)
}

// runChecked runs input as a batch to completion and checks its output of n requests.
func (c *client) runChecked(ctx context.Context, input string, n int, exact *bool) error {
	b, err := c.createBatch(ctx, input)
	if err != nil {
		return err
	}
	if b, err = c.waitBatch(ctx, b.ID, servePoll, completed); err != nil {
		return err
	}
	*exact, err = c.checkOutput(ctx, b.OutputFileID, n)
	return err
}

// runServeLoadBench runs serveLoadBatches batches of serveLoadLines lines, spread over
// serveLoadKeys keys, all at once, and checks every output.
func runServeLoadBench(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
	base, s, stop, err := startTenantServe(ctx, sc, dir, serveLoadKeys)
	if err != nil {
		return nil, err
	}
	defer stop()
	runtime.GC()
	start := time.Now()
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	exact := make([]bool, serveLoadBatches)
	errs := make([]error, serveLoadBatches)
	for i := range serveLoadBatches {
		c, err := newClient(base, serveBenchKeyN(i%serveLoadKeys))
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			if errs[i] = c.runChecked(gctx, input, sc.Requests, &exact[i]); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	wall := time.Since(start)

	r := &Result{Scenario: sc.Name, Concurrency: sc.Concurrency, Requests: int64(serveLoadBatches * sc.Requests),
		Sent: s.Stats().Requests, Wall: wall.Seconds(), PeakRSSMB: peakRSSMB(),
		Exact: !slices.Contains(exact, false)}
	r.Throughput = float64(r.Requests) / r.Wall
	r.Pass, r.Verdict = sc.check(r)
	return r, nil
}

// runServeFairBench times a small batch of key 1 on an idle server, then again while key
// 0 runs serveFairBatches large batches, serveFairRounds times each; Wall and
// BaselineWall are the medians.
func runServeFairBench(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
	large := filepath.Join(dir, sc.Name+"-large.jsonl")
	if err := writeBenchRequests(large, serveFairLines, sc.maxTokens); err != nil {
		return nil, err
	}
	base, s, stop, err := startTenantServe(ctx, sc, dir, 2)
	if err != nil {
		return nil, err
	}
	defer stop()
	heavy, err := newClient(base, serveBenchKeyN(0))
	if err != nil {
		return nil, err
	}
	small, err := newClient(base, serveBenchKeyN(1))
	if err != nil {
		return nil, err
	}
	exact := true
	timeSmall := func() (time.Duration, error) {
		start := time.Now()
		b, err := small.createBatch(ctx, input)
		if err == nil {
			b, err = small.waitBatch(ctx, b.ID, servePoll, completed)
		}
		if err != nil {
			return 0, err
		}
		d := time.Since(start)
		ok, err := small.checkOutput(ctx, b.OutputFileID, sc.Requests)
		exact = exact && ok
		return d, err
	}
	var idle, loaded []time.Duration
	if _, err := timeSmall(); err != nil { // warm up
		return nil, fmt.Errorf("idle: %w", err)
	}
	for range serveFairRounds {
		d, err := timeSmall()
		if err != nil {
			return nil, fmt.Errorf("idle: %w", err)
		}
		idle = append(idle, d)
	}
	var ids []string
	for range serveFairBatches {
		b, err := heavy.createBatch(ctx, large)
		if err != nil {
			return nil, err
		}
		ids = append(ids, b.ID)
	}
	// Every large batch is past its start (validated, ingested) and sending.
	for _, id := range ids {
		if _, err := heavy.waitBatch(ctx, id, servePoll, func(b *sluice.Batch) bool {
			return b.RequestCounts.Completed >= serveFairLines/20 || completed(b)
		}); err != nil {
			return nil, err
		}
	}
	for range serveFairRounds {
		d, err := timeSmall()
		if err != nil {
			return nil, fmt.Errorf("loaded: %w", err)
		}
		loaded = append(loaded, d)
	}
	for _, id := range ids {
		b, err := heavy.waitBatch(ctx, id, servePoll, completed)
		if err != nil {
			return nil, err
		}
		ok, err := heavy.checkOutput(ctx, b.OutputFileID, serveFairLines)
		if err != nil {
			return nil, err
		}
		exact = exact && ok
	}
	r := &Result{Scenario: sc.Name, Concurrency: sc.Concurrency,
		Requests: int64(2*serveFairRounds*sc.Requests + serveFairBatches*serveFairLines), Sent: s.Stats().Requests,
		Wall: median(loaded).Seconds(), BaselineWall: median(idle).Seconds(), PeakRSSMB: peakRSSMB(), Exact: exact}
	r.Throughput = float64(r.Requests) / r.Wall
	r.Pass, r.Verdict = sc.check(r)
	return r, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
