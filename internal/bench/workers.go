package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice/internal/ids"
	"github.com/sluice-llm/sluice/internal/storeurl"
	"github.com/sluice-llm/sluice/postgres"
	"github.com/sluice-llm/sluice/sim"
)

// The scenarios of many workers on one PostgreSQL store (issue 12): each runs sluice run
// and sluice worker as processes of this binary, against one simulator served on
// 127.0.0.1, with the store that Options.StoreURL ($SLUICE_STORE) names (a postgres:// URL; each scenario
// works in a schema of its own, dropped after).
func workerBenchScenarios() []Scenario {
	return []Scenario{
		{
			Name: "workers-kill", What: "3 processes (run + 2 workers, concurrency 64 each), 20,000 requests, 50 ms latency, one worker SIGKILLed mid-run: every custom_id exactly once, re-paid ≤ 64 (the killed worker's concurrency)",
			Requests: 20_000, Concurrency: 64, maxTokens: 16, sim: sim.Config{TTFT: 50 * time.Millisecond},
			run: func(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
				f, err := runFleet(ctx, sc, dir, input, 3, true)
				if err != nil {
					return nil, err
				}
				r := f.result(sc)
				r.Pass = r.Exact && f.repaid <= int64(sc.Concurrency)
				r.Verdict = fmt.Sprintf("exactly once: %v; re-paid %d (answered twice by the simulator; target ≤ %d); the ledger took back %d from the dead worker (claimed, not all sent); killed after %d answers; %.0f req/s",
					r.Exact, f.repaid, sc.Concurrency, f.ledgerRepaid, f.killedAt, f.steady)
				return r, nil
			},
		},
		{
			Name: "workers-limit", What: "4 processes (run + 3 workers, concurrency 64 each) against a hidden 6,000 RPM limit, none given: ≥ 90% of the limit, ≤ 2% of answers 429",
			Requests: 8_000, Concurrency: 64, maxTokens: 16, sim: sim.Config{RPM: 6000, TTFT: 50 * time.Millisecond},
			run: func(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
				f, err := runFleet(ctx, sc, dir, input, 4, false)
				if err != nil {
					return nil, err
				}
				r := f.result(sc)
				r.BindingRPS = float64(sc.sim.RPM) / 60
				share := f.steady / r.BindingRPS
				throttled := float64(r.Throttled) / float64(max(1, r.Sent))
				r.Pass = r.Exact && share >= 0.9 && throttled <= 0.02
				r.Verdict = fmt.Sprintf("%.1f%% of the hidden %.0f req/s (target ≥ 90%%), %.2f%% answered 429 (target ≤ 2%%), exactly once: %v",
					100*share, r.BindingRPS, 100*throttled, r.Exact)
				return r, nil
			},
		},
		{
			Name: "workers-scaling", What: "200 ms latency, no limit, 1, 2 and 4 processes (concurrency 64 each): ≥ 0.9× linear throughput",
			Requests: 8_000, Concurrency: 64, maxTokens: 16, sim: sim.Config{TTFT: 200 * time.Millisecond},
			run: runWorkersScaling,
		},
	}
}

// runWorkersScaling runs the input with 1, 2 and 4 processes and compares their steady
// throughput with the first's times their number.
func runWorkersScaling(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
	var rates []float64
	var last *Result
	exact := true
	for _, n := range []int{1, 2, 4} {
		f, err := runFleet(ctx, sc, dir, input, n, false)
		if err != nil {
			return nil, err
		}
		rates = append(rates, f.steady)
		last = f.result(sc)
		exact = exact && last.Exact
	}
	r2, r4 := rates[1]/(2*rates[0]), rates[2]/(4*rates[0])
	last.Exact = exact
	last.Pass = exact && r2 >= 0.9 && r4 >= 0.9
	last.Verdict = fmt.Sprintf("%.0f, %.0f and %.0f req/s with 1, 2 and 4 processes: %.2f× and %.2f× linear (target ≥ 0.9×; Little's law: %.0f req/s a process), exactly once: %v",
		rates[0], rates[1], rates[2], r2, r4, float64(sc.Concurrency)/sc.sim.TTFT.Seconds(), exact)
	return last, nil
}

// fleet is what one run of a scenario's processes measured.
type fleet struct {
	requests     int64
	sent, thrott int64
	wall         time.Duration
	steady       float64 // 2xx answers a second between the 5th and the 95th percentile of their times
	repaid       int64   // requests the simulator answered 2xx more than once
	ledgerRepaid int64
	killedAt     int64 // 2xx answers when the worker was killed
	exact        bool
}

func (f *fleet) result(sc Scenario) *Result {
	r := &Result{Scenario: sc.Name, Concurrency: sc.Concurrency, Requests: f.requests, Sent: f.sent,
		Throttled: f.thrott, Wall: f.wall.Seconds(), PeakRSSMB: peakRSSMB(), Exact: f.exact}
	r.Throughput = float64(r.Requests) / r.Wall
	return r
}

// runFleet runs input with sluice run and n-1 sluice workers (processes of this binary)
// on a fresh schema of Options.StoreURL, against the scenario's simulator on 127.0.0.1;
// with kill, the first worker is SIGKILLed once 30% of the requests are answered.
func runFleet(ctx context.Context, sc Scenario, dir, input string, n int, kill bool) (*fleet, error) {
	storeURL, drop, err := benchSchema(ctx, sc.storeURL, sc.Name)
	if err != nil {
		return nil, err
	}
	defer drop()
	up, err := startCountingSim(sc.sim)
	if err != nil {
		return nil, err
	}
	defer up.close()
	exe := sc.exe
	if exe == "" {
		return nil, errors.New("the workers scenarios run sluice processes: no sluice binary (Options.Exe)")
	}
	out := filepath.Join(dir, sc.Name+".out.jsonl")
	conc := strconv.Itoa(sc.Concurrency)
	env := append(os.Environ(), "OPENAI_API_KEY=sk-bench", "SLUICE_STORE="+storeURL)
	var logs []*bytes.Buffer // each process's stderr
	command := func(args ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, exe, args...)
		logs = append(logs, &bytes.Buffer{})
		c.Env, c.Stdout, c.Stderr = env, io.Discard, logs[len(logs)-1]
		return c
	}
	logText := func() string {
		var all []byte
		for _, l := range logs {
			all = append(all, l.Bytes()...)
		}
		return string(all)
	}
	start := time.Now()
	run := command("run", input, "-o", out, "--base-url", up.url+"/v1", "--concurrency", conc, "--progress", "none")
	if err := run.Start(); err != nil {
		return nil, err
	}
	var workers []*exec.Cmd
	for range n - 1 {
		w := command("worker", "--follow", "--poll", "100ms", "--concurrency", conc)
		if err := w.Start(); err != nil {
			_ = run.Process.Kill()
			return nil, err
		}
		workers = append(workers, w)
	}
	f := &fleet{}
	if kill && len(workers) > 0 {
		f.killedAt = up.killWhen(int64(sc.Requests)*3/10, workers[0].Process)
	}
	runErr := run.Wait()
	f.wall = time.Since(start)
	for i, w := range workers {
		if kill && i == 0 {
			_ = w.Wait() // killed
			continue
		}
		_ = w.Process.Signal(syscall.SIGTERM)
		if err := w.Wait(); err != nil {
			return nil, fmt.Errorf("worker: %w\n%s", err, logText())
		}
	}
	if runErr != nil {
		return nil, fmt.Errorf("sluice run: %w\n%s", runErr, logText())
	}
	up.close()
	f.sent, f.thrott = up.sim.Stats().Requests, up.sim.Stats().Throttled
	f.repaid, f.steady = up.summary()
	if err := f.check(ctx, storeURL, out, sc.Requests); err != nil {
		return nil, err
	}
	return f, nil
}

// check reads the output file (every custom_id once, in order, with its own answer) and
// the ledger's counts.
func (f *fleet) check(ctx context.Context, storeURL, out string, n int) error {
	st, err := postgres.Open(ctx, storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	jobs, err := st.Jobs(ctx, "")
	if err != nil || len(jobs) != 1 {
		return fmt.Errorf("read the job: %d jobs, %w", len(jobs), err)
	}
	stats, err := st.Stats(ctx, jobs[0].ID)
	if err != nil {
		return err
	}
	f.requests, f.ledgerRepaid = stats.Done+stats.Failed, stats.Repaid
	fh, err := os.Open(out)
	if err != nil {
		return err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	i := 0
	f.exact = true
	for sc.Scan() {
		i++
		var line struct {
			CustomID string `json:"custom_id"`
			Response *struct {
				Body json.RawMessage `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("%s line %d: %w", out, i, err)
		}
		id := benchID(i)
		if line.CustomID != id || line.Response == nil || !bytes.Contains(line.Response.Body, []byte("ask "+id)) {
			f.exact = false
		}
	}
	f.exact = f.exact && i == n
	return sc.Err()
}

// benchSchema is the store URL base (Options.StoreURL, $SLUICE_STORE in the sluice
// command) with a schema of the scenario's own, and a function that drops the schema.
func benchSchema(ctx context.Context, base, name string) (string, func(), error) {
	if loc, err := storeurl.Parse(base); base == "" || err != nil || loc.Kind != storeurl.Postgres {
		return "", nil, errors.New("the workers scenarios need a PostgreSQL store: set SLUICE_STORE=postgres://…")
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, errors.New("malformed SLUICE_STORE URL")
	}
	schema := "bench_" + ids.Hex(4)
	q := u.Query()
	q.Set(postgres.SchemaParam, schema)
	u.RawQuery = q.Encode()
	q.Del(postgres.SchemaParam)
	plain := *u
	plain.RawQuery = q.Encode()
	drop := func() {
		conn, err := pgx.Connect(context.WithoutCancel(ctx), plain.String())
		if err != nil {
			return
		}
		defer conn.Close(context.WithoutCancel(ctx))
		_, _ = conn.Exec(context.WithoutCancel(ctx), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	}
	return u.String(), drop, nil
}

// benchCountingSim is the simulator served on 127.0.0.1, recording when each request named
// in its prompt ("ask b0000001") was answered 2xx.
type benchCountingSim struct {
	url       string
	sim       *sim.Server
	srv       *http.Server
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu      sync.Mutex
	answers map[string]int
	times   []time.Time
	watch   func(n int64) // called with the count of 2xx answers after each
}

func startCountingSim(cfg sim.Config) (*benchCountingSim, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &benchCountingSim{url: "http://" + ln.Addr().String(), sim: sim.New(cfg), answers: map[string]int{}}
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	c.wg.Go(func() { _ = c.srv.Serve(ln) })
	return c, nil
}

// ServeHTTP answers with the simulator and records 2xx answers.
func (c *benchCountingSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, status := AnswerWithSim(c.sim, w, r)
	i := bytes.Index(body, []byte("ask b"))
	if i < 0 || status/100 != 2 || i+12 > len(body) {
		return
	}
	c.mu.Lock()
	c.answers[string(body[i+4:i+12])]++
	c.times = append(c.times, time.Now())
	n, watch := int64(len(c.times)), c.watch
	c.mu.Unlock()
	if watch != nil {
		watch(n)
	}
}

// killWhen SIGKILLs p once at answers 2xx answers, and returns the threshold.
func (c *benchCountingSim) killWhen(answers int64, p *os.Process) int64 {
	var once sync.Once
	c.mu.Lock()
	c.watch = func(n int64) {
		if n >= answers {
			once.Do(func() { _ = p.Kill() })
		}
	}
	c.mu.Unlock()
	return answers
}

// summary returns the requests answered 2xx more than once, and the rate of 2xx answers
// between the 5th and the 95th percentile of their times (start-up and tail left out).
func (c *benchCountingSim) summary() (repaid int64, steady float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.answers {
		repaid += int64(k - 1)
	}
	ts := slices.Clone(c.times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	if len(ts) < 20 {
		return repaid, 0
	}
	lo, hi := len(ts)/20, len(ts)*19/20
	return repaid, float64(hi-lo) / ts[hi].Sub(ts[lo]).Seconds()
}

func (c *benchCountingSim) close() {
	c.closeOnce.Do(func() {
		_ = c.srv.Close()
		c.wg.Wait()
		c.sim.Close()
	})
}

// AnswerWithSim answers r with the simulator s and returns the request's body and the
// answer's status (0 when the body could not be read).
func AnswerWithSim(s *sim.Server, w http.ResponseWriter, r *http.Request) (body []byte, status int) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, 0
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusWriter{ResponseWriter: w}
	s.ServeHTTP(rec, r)
	return body, rec.status
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
