package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// batchBenchPoll is how often the batch scenario polls: often, so that the wait for the
// provider does not hide the client's own time.
const batchBenchPoll = 20 * time.Millisecond

// runBatchBench runs the batch scenario: the input through sluice batch (ingest, split,
// upload, create, poll, collect, write the output file) against a sluice serve on
// 127.0.0.1 over a zero-latency simulator. Wall is the whole; Client is the time spent
// in sluice batch's own work (everything but the sleeps between polls and the provider's
// run, which a poll only waits on).
func runBatchBench(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
	base, s, stop, err := startServe(ctx, dir, serveSetup{name: sc.Name + "-serve", sim: sc.sim, concurrency: sc.Concurrency,
		keys: []string{serveBenchKey}, maxLines: int64(sc.Requests)})
	if err != nil {
		return nil, err
	}
	defer stop()
	st, err := sqlite.Open(ctx, filepath.Join(dir, sc.Name+".db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	api, err := openai.New(openai.Config{BaseURL: base, APIKey: serveBenchKey, HTTPClient: &http.Client{}})
	if err != nil {
		return nil, err
	}
	r, err := batch.New(st, api, batch.Config{})
	if err != nil {
		return nil, err
	}
	job := &sluice.Job{ID: newJobID(), State: sluice.JobRunning, Input: input, Options: []byte(`{"mode":"batch"}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		return nil, err
	}
	in, err := os.Open(input)
	if err != nil {
		return nil, err
	}
	defer in.Close()

	runtime.GC()
	start := time.Now()
	if err := batch.Ingest(ctx, st, job, ingest.NewSource(bufio.NewReaderSize(in, 1<<20), tokens.Default()), nil); err != nil {
		return nil, err
	}
	parts, err := r.Submit(ctx, job)
	if err != nil {
		return nil, err
	}
	submitted := time.Since(start)
	var stepping time.Duration
	for {
		t := time.Now()
		prog, err := r.Step(ctx, job, true)
		stepping += time.Since(t)
		if err != nil {
			return nil, err
		}
		if prog.Done {
			break
		}
		if prog.Leftover > 0 || len(prog.Warnings) > 0 {
			return nil, fmt.Errorf("batch: %d left over, warnings %v", prog.Leftover, prog.Warnings)
		}
		select {
		case <-time.After(batchBenchPoll):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	t := time.Now()
	out := filepath.Join(dir, sc.Name+".output.jsonl")
	if _, err := writeOutputFiles(ctx, st, job.ID, out, ""); err != nil {
		return nil, err
	}
	written := time.Since(t)
	wall := time.Since(start)
	stats, err := st.Stats(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Scenario: sc.Name, Concurrency: sc.Concurrency, Requests: stats.Done + stats.Failed, Sent: s.Stats().Requests,
		Wall: wall.Seconds(), PeakRSSMB: peakRSSMB(), Parts: len(parts),
		SubmitSeconds: submitted.Seconds(), StepSeconds: stepping.Seconds(), WriteSeconds: written.Seconds(),
	}
	res.Throughput = float64(res.Requests) / res.Wall
	if res.Exact, err = checkOwnAnswers(ctx, st, job.ID, sc.Requests); err != nil {
		return nil, err
	}
	res.Exact = res.Exact && res.Sent == int64(sc.Requests)
	res.Pass, res.Verdict = sc.check(res)
	return res, nil
}
