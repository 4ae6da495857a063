package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// serveBenchKey is the client key of the serve scenario's server.
const serveBenchKey = "sk-bench"

// serveBenchRounds is how many times the serve scenario measures each side, alternating,
// keeping the fastest of each: on a shared machine one measurement of each can be off by
// more than the margin being checked.
const serveBenchRounds = 2

// runServeBench runs the serve scenario: the input as sluice run would run it (ingest, run,
// output file), then as a batch through sluice serve over HTTP on 127.0.0.1, each over its
// own zero-latency simulator and a fresh store, serveBenchRounds times.
func runServeBench(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
	var best *Result
	var base time.Duration
	for round := range serveBenchRounds {
		name := fmt.Sprintf("%s%d", sc.Name, round+1)
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
func benchEngineRun(ctx context.Context, sc Scenario, dir, name, input string) (time.Duration, error) {
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
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: sc.Concurrency})
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
	exact, err := checkOwnAnswers(ctx, st, job.ID, sc.Requests)
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
func benchServeRun(ctx context.Context, sc Scenario, dir, name, input string) (*Result, error) {
	base, s, stop, err := startServe(ctx, dir, serveSetup{name: name, sim: sc.sim, concurrency: sc.Concurrency,
		keys: []string{serveBenchKey}, maxLines: int64(sc.Requests)})
	if err != nil {
		return nil, err
	}
	defer stop()
	c, err := newClient(base, serveBenchKey)
	if err != nil {
		return nil, err
	}

	runtime.GC()
	start := time.Now()
	b, err := c.createBatch(ctx, input)
	if err == nil {
		b, err = c.waitBatch(ctx, b.ID, servePoll, completed)
	}
	if err != nil {
		return nil, err
	}
	wall := time.Since(start)
	r := &Result{
		Scenario: sc.Name, Concurrency: sc.Concurrency,
		Requests: b.RequestCounts.Completed + b.RequestCounts.Failed, Sent: s.Stats().Requests,
		Wall: wall.Seconds(),
	}
	r.Throughput = float64(r.Requests) / r.Wall
	if r.Exact, err = c.checkOutput(ctx, b.OutputFileID, sc.Requests); err != nil {
		return nil, err
	}
	return r, nil
}

// serveSetup is the sluice serve a scenario starts.
type serveSetup struct {
	name        string     // names its store and files directory in the scenario's directory
	sim         sim.Config // its own simulator's
	concurrency int
	keys        []string // the client keys it takes
	maxLines    int64    // service.Config.MaxLines (0: the default)
	// asCommand serves as the serve command does: its HTTP server and listener, with
	// their default limits.
	asCommand bool
}

// startServe starts a sluice serve on 127.0.0.1 over its own simulator and a fresh store
// in dir, and returns its /v1 base URL and the simulator; stop shuts it down.
func startServe(ctx context.Context, dir string, setup serveSetup) (base string, s *sim.Server, stop func(), err error) {
	st, err := sqlite.Open(ctx, filepath.Join(dir, setup.name+".db"))
	if err != nil {
		return "", nil, nil, err
	}
	s = sim.New(setup.sim)
	fail := func(err error) (string, *sim.Server, func(), error) {
		s.Close()
		st.Close()
		return "", nil, nil, err
	}
	up, err := simClient(s)
	if err != nil {
		return fail(err)
	}
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: setup.concurrency})
	if err != nil {
		return fail(err)
	}
	cfg := service.Config{Store: st, FilesDir: filepath.Join(dir, setup.name+".files"),
		Routes: []service.Route{{Name: simUpstreamName, Engine: eng}}, MaxLines: setup.maxLines}
	for _, k := range setup.keys {
		cfg.KeyHashes = append(cfg.KeyHashes, service.HashKey(k))
	}
	svc, err := service.New(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	srv := sluicehttp.NewServer(svc, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(errors.Join(err, srv.Close(ctx)))
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	l := ln
	if setup.asCommand {
		hs = sluicehttp.NewHTTPServer(srv.Handler(), sluicehttp.Limits{}, nil)
		l = sluicehttp.Listen(ln, sluicehttp.Limits{})
	}
	var serving sync.WaitGroup
	serving.Go(func() { _ = hs.Serve(l) }) // http.ErrServerClosed after Shutdown
	stop = func() {
		_ = hs.Shutdown(ctx)
		serving.Wait()
		_ = srv.Close(ctx)
		s.Close()
		st.Close()
	}
	return "http://" + ln.Addr().String() + "/v1", s, stop, nil
}
