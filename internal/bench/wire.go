package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	openaigo "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// The wire scenario (issue 13): sluice's cost per request the way users meet it, against
// the two clients a user could write instead, each sending the same file to the same
// zero-latency simulator, served over loopback TCP by a process of its own ("sluice
// sim"), one after the other in one run:
//
//   - a bare keep-alive HTTP loop: the same body again and again, the answer read and
//     dropped; no JSON, no ledger, no output. The physical limit of the machine and the
//     server.
//   - the naive client: the openai-go SDK and an errgroup, each line decoded into the
//     SDK's params and its answer written to an output file; no ledger, so nothing
//     survives a crash. Its HTTP client pools as many connections as the concurrency (with
//     Go's default of 2 idle connections per host it would spend its time dialing).
//   - sluice: ingest with the real tokenizer, the SQLite ledger, the engine, and the
//     output file written from the ledger, as sluice run does.
const (
	wireConcurrency = 64
	wireNaiveMin    = 2.0  // sluice's rate over the naive client's
	wireBareMin     = 0.6  // sluice's rate over the bare loop's
	wireCPUMax      = 60.0 // µs of CPU per request, sluice's process
	wireKey         = "sk-bench"
)

func wireScenario() Scenario {
	return Scenario{
		Name: "wire", What: fmt.Sprintf("the same 100,000 requests, concurrency %d, to a zero-latency simulator in a process of its own over loopback TCP: sluice run (SQLite ledger, output file) ≥ %.0f× the naive openai-go + errgroup client and ≥ %.1f× a bare keep-alive HTTP loop, ≤ %.0f µs of CPU per request",
			wireConcurrency, wireNaiveMin, wireBareMin, wireCPUMax),
		Requests: 100_000, Concurrency: wireConcurrency, maxTokens: 16, run: runWireBench,
		check: func(r *Result) (bool, string) {
			naive, bare := r.Throughput/r.NaiveRPS, r.Throughput/r.BareRPS
			return r.Exact && naive >= wireNaiveMin && bare >= wireBareMin && r.CPUMicros <= wireCPUMax,
				fmt.Sprintf("sluice %.0f req/s = %.2f× the naive client's %.0f (target ≥ %.0f×), %.2f× the bare loop's %.0f (target ≥ %.1f×); CPU %.0f µs/request (target ≤ %.0f; naive %.0f, bare %.0f); exactly once: %v",
					r.Throughput, naive, r.NaiveRPS, wireNaiveMin, bare, r.BareRPS, wireBareMin,
					r.CPUMicros, wireCPUMax, r.NaiveCPUMicros, r.BareCPUMicros, r.Exact)
		},
	}
}

// leg is one client's measurement: requests answered, wall time and process CPU time.
type leg struct {
	n    int64
	wall time.Duration
	cpu  time.Duration
}

func (l leg) rate() float64 { return float64(l.n) / l.wall.Seconds() }

func (l leg) cpuMicros() float64 {
	return float64(l.cpu.Microseconds()) / float64(max(1, l.n))
}

// measure runs f and measures it from a collected heap.
func measure(f func() (int64, error)) (leg, error) {
	runtime.GC()
	start, cpu := time.Now(), cpuTime()
	n, err := f()
	return leg{n: n, wall: time.Since(start), cpu: cpuTime() - cpu}, err
}

func runWireBench(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
	sim, err := startSimProcess(ctx, sc.exe)
	if err != nil {
		return nil, err
	}
	defer sim.stop()
	body, err := firstBody(input)
	if err != nil {
		return nil, err
	}
	bare, err := measure(func() (int64, error) { return bareLoop(ctx, sim.base, body, sc.Requests, sc.Concurrency) })
	if err != nil {
		return nil, fmt.Errorf("bare loop: %w", err)
	}
	naive, err := measure(func() (int64, error) {
		return naiveClient(ctx, sim.base, input, filepath.Join(dir, "naive.output.jsonl"), sc.Concurrency)
	})
	if err != nil {
		return nil, fmt.Errorf("naive client: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, sc.Name+".db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var jobID string
	own, err := measure(func() (n int64, err error) {
		defer underGCPolicy(sc)()
		if sc.profile != nil {
			if err := pprof.StartCPUProfile(sc.profile); err != nil {
				return 0, fmt.Errorf("cpu profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		n, jobID, err = sluiceRun(ctx, st, sim.base, sc, dir, input)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("sluice: %w", err)
	}
	// The check reads every answer back: it is the bench's, not sluice run's, so it is
	// not measured.
	exact, err := checkOwnAnswers(ctx, st, jobID, sc.Requests)
	if err != nil {
		return nil, err
	}
	r := &Result{Scenario: sc.Name, Concurrency: sc.Concurrency, Requests: own.n,
		Wall: own.wall.Seconds(), Throughput: own.rate(), PeakRSSMB: peakRSSMB(), Exact: exact,
		BareRPS: bare.rate(), NaiveRPS: naive.rate(),
		CPUMicros: own.cpuMicros(), NaiveCPUMicros: naive.cpuMicros(), BareCPUMicros: bare.cpuMicros()}
	r.Pass, r.Verdict = sc.check(r)
	return r, nil
}

// firstBody is the body of input's first request.
func firstBody(input string) ([]byte, error) {
	f, err := os.Open(input)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var req sluice.Request
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, err
	}
	return req.Body, nil
}

// pooled is an HTTP client that keeps n connections to one host alive.
func pooled(n int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, IdleConnTimeout: time.Minute}}
}

// bareLoop POSTs body to the chat endpoint n times from c goroutines over kept-alive
// connections, reading each answer and dropping it.
func bareLoop(ctx context.Context, base string, body []byte, n, c int) (int64, error) {
	hc := pooled(c)
	defer hc.CloseIdleConnections()
	url := base + "/chat/completions"
	var next, done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range c {
		g.Go(func() error {
			for next.Add(1) <= int64(n) {
				req, err := http.NewRequestWithContext(gctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+wireKey)
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status %s", resp.Status)
				}
				done.Add(1)
			}
			return nil
		})
	}
	err := g.Wait()
	return done.Load(), err
}

// naiveClient is what a user writes with the official SDK: read the file line by line,
// send each request with Chat.Completions.New from an errgroup of c, and write each
// answer to the output file.
func naiveClient(ctx context.Context, base, input, output string, c int) (int64, error) {
	in, err := os.Open(input)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.Create(output)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	hc := pooled(c)
	defer hc.CloseIdleConnections()
	client := openaigo.NewClient(option.WithBaseURL(base+"/"), option.WithAPIKey(wireKey), option.WithHTTPClient(hc))

	var mu sync.Mutex
	var done int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			CustomID string                           `json:"custom_id"`
			Body     openaigo.ChatCompletionNewParams `json:"body"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return done, err
		}
		g.Go(func() error {
			resp, err := client.Chat.Completions.New(gctx, line.Body)
			if err != nil {
				return fmt.Errorf("%s: %w", line.CustomID, err)
			}
			b, err := json.Marshal(struct {
				CustomID string                   `json:"custom_id"`
				Response *openaigo.ChatCompletion `json:"response"`
			}{line.CustomID, resp})
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			done++
			_, err = w.Write(append(b, '\n'))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return done, err
	}
	if err := sc.Err(); err != nil {
		return done, err
	}
	if err := w.Flush(); err != nil {
		return done, err
	}
	return done, out.Close()
}

// sluiceRun is sluice run on input against the upstream at base, with its ledger in st:
// ingest, run, and write the output file; it returns the final requests and the job's id.
func sluiceRun(ctx context.Context, st *sqlite.Store, base string, sc Scenario, dir, input string) (int64, string, error) {
	job := &sluice.Job{ID: newJobID(), State: sluice.JobRunning, Input: input, Options: []byte(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		return 0, "", err
	}
	hc := &http.Client{Transport: openai.NewTransportFor(base, sc.Concurrency)}
	defer hc.CloseIdleConnections()
	up, err := openai.New(openai.Config{BaseURL: base, APIKey: wireKey, HTTPClient: hc})
	if err != nil {
		return 0, "", err
	}
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: sc.Concurrency})
	if err != nil {
		return 0, "", err
	}
	in, err := os.Open(input)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	run, err := eng.Start(ctx, job, ingest.NewSource(bufio.NewReaderSize(in, 1<<20), tokens.Default()))
	if err != nil {
		return 0, "", err
	}
	if err := run.Wait(); err != nil {
		return 0, "", err
	}
	counts, err := writeOutputFiles(ctx, st, job.ID, filepath.Join(dir, sc.Name+".output.jsonl"), filepath.Join(dir, sc.Name+".errors.jsonl"))
	if err != nil {
		return 0, "", err
	}
	return counts.Done + counts.Failed, job.ID, nil
}
