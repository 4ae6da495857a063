package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/gateway"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// The gateway scenario's targets (issue #17).
const (
	gwTargetP50      = 0.3  // ms added at p50, sequential
	gwTargetP99      = 1.0  // ms added at p99, sequential
	gwTargetRatio    = 0.5  // of direct throughput at concurrency 64
	gwTargetCPU      = 0.1  // ms of CPU per proxied request
	gwTargetRSS      = 150  // MB peak
	gwTargetTTFB     = 0.5  // ms added to a stream's first byte
	gwTargetP95Ratio = 1.20 // online p95 beside a batch, of idle
)

// The gateway scenario's rounds: direct and proxied measurements alternate, and the
// median of the rounds' figures counts.
const (
	gwLatencyRounds  = 7
	gwLatencyN       = 500
	gwThroughRounds  = 9
	gwThroughFor     = time.Second
	gwConcurrency    = 64
	gwTTFBRounds     = 5
	gwTTFBN          = 200
	gwBatchOnlineN   = 480 // online requests beside the batch; as many idle, half before and half after
	gwBatchUsers     = 4   // online users calling at once, each one call after the other
	gwBatchAloneFor  = 2 * time.Second
	gwBatchSimTTFT   = 50 * time.Millisecond
	gwBatchSimRPM    = 12000
	gwBatchEngineCon = 64
)

const (
	gwChatBody   = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi in one word."}],"max_tokens":16,"user":"bench-user"}`
	gwStreamBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi in one word."}],"max_tokens":16,"stream":true}`
)

func gatewayScenarios() []Scenario {
	return []Scenario{
		{
			Name: "gateway", What: fmt.Sprintf("online requests through sluice serve's gateway (keys, limits, budgets, usage on) vs straight to a zero-latency simulator on 127.0.0.1: added p50 ≤ %.1f ms and p99 ≤ %.0f ms sequential, ≥ %.1f× direct req/s at concurrency %d with ≤ %.1f ms CPU a request, ≤ %.1f ms more to a stream's first byte, peak RSS ≤ %d MB",
				gwTargetP50, gwTargetP99, gwTargetRatio, gwConcurrency, gwTargetCPU, gwTargetTTFB, gwTargetRSS),
			Requests: 1, run: runGatewayBench,
		},
		{
			Name: "gateway-batch", What: fmt.Sprintf("online p95 of %d users through the gateway while a batch runs on the same upstream engine (simulator latency %v, hidden %d RPM with headers, engine concurrency %d): within %.0f%% of idle",
				gwBatchUsers, gwBatchSimTTFT, gwBatchSimRPM, gwBatchEngineCon, (gwTargetP95Ratio-1)*100),
			Requests: 20000, Concurrency: gwBatchEngineCon, maxTokens: 16, run: runGatewayBatchBench,
			sim: sim.Config{Seed: 1, TTFT: gwBatchSimTTFT, RPM: gwBatchSimRPM},
		},
	}
}

// gwBench is a sluice serve (batch API and gateway) over a simulator, both on 127.0.0.1.
type gwBench struct {
	direct, proxied string // base URLs (with /v1)
	engine          *sluice.Engine
	store           *sqlite.Store
	client          *http.Client
	closers         []func()
}

func (b *gwBench) close() {
	slices.Reverse(b.closers)
	for _, c := range b.closers {
		c()
	}
}

// serveOn serves h on a fresh loopback port and returns its base URL. Its goroutines
// (and the connections' and transports' they start) carry the profiler label
// part=name, so that a CPU profile of the scenario (bench --cpuprofile) tells the
// gateway's share from the simulator's and the client's: pprof -tagfocus=part=gateway.
func (b *gwBench) serveOn(name string, h http.Handler, wrap func(net.Listener) net.Listener, hs *http.Server) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	if hs == nil {
		hs = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	}
	served := make(chan struct{})
	go pprof.Do(context.Background(), pprof.Labels("part", name), func(context.Context) {
		defer close(served)
		_ = hs.Serve(ln)
	})
	b.closers = append(b.closers, func() {
		_ = hs.Shutdown(context.Background())
		<-served
	})
	return "http://" + ln.Addr().String() + "/v1", nil
}

// startGatewayBench starts the simulator and sluice serve in front of it, configured as
// serve configures itself: a key with a budget, per-key limits, usage recorded.
func startGatewayBench(ctx context.Context, dir string, simCfg sim.Config, concurrency int) (_ *gwBench, err error) {
	b := &gwBench{client: &http.Client{Transport: gateway.NewTransport(256)}}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	s := sim.New(simCfg)
	b.closers = append(b.closers, s.Close)
	if b.direct, err = b.serveOn("sim", s, nil, nil); err != nil {
		return nil, err
	}
	if b.store, err = sqlite.Open(ctx, filepath.Join(dir, "gateway.db")); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { b.store.Close() })
	up, err := openai.New(openai.Config{BaseURL: b.direct, HTTPClient: &http.Client{Transport: openai.NewTransportFor(b.direct, concurrency)}})
	if err != nil {
		return nil, err
	}
	if b.engine, err = sluice.New(b.store, up, sluice.Config{Concurrency: concurrency}); err != nil {
		return nil, err
	}
	cost := func(_ string, u sluice.Usage) float64 {
		return float64(u.PromptTokens)*0.15e-6 + float64(u.CompletionTokens)*0.6e-6
	}
	hash := service.HashKey(serveBenchKey)
	svc, err := service.New(ctx, service.Config{
		Store: b.store, FilesDir: filepath.Join(dir, "files"), Cost: cost,
		Routes: []service.Route{{Name: "sim", Engine: b.engine}},
		Keys:   []service.Key{{Name: "bench", Hash: hash, Budget: service.KeyBudget{MaxCost: 1e6, Period: service.PeriodDaily}}},
	})
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { _ = svc.Close(context.WithoutCancel(ctx)) })
	srv := sluicehttp.NewServer(svc, nil)
	gw, err := gateway.New(gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: b.direct, Engine: b.engine}},
		Keys:      []gateway.Key{{Name: "bench", Hash: hash, RPM: 1e9, TPM: 1e12}},
		Budget:    svc.BudgetPool, Usage: b.store, Cost: cost,
	})
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { _ = gw.Close(context.WithoutCancel(ctx)) })
	var limits sluicehttp.Limits
	mux := http.NewServeMux()
	gw.Register(mux)
	mux.Handle("/", srv.Handler())
	hs := sluicehttp.NewHTTPServer(mux, limits, slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn))
	wrap := func(ln net.Listener) net.Listener { return sluicehttp.Listen(ln, limits) }
	if b.proxied, err = b.serveOn("gateway", nil, wrap, hs); err != nil {
		return nil, err
	}
	return b, nil
}

// call sends body to base's chat completions and reads the answer; with ttfb it returns
// when the first byte of the body arrived (the rest is read after).
func (b *gwBench) call(ctx context.Context, base, body string, ttfb bool) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat/completions", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+serveBenchKey)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var first time.Duration
	if ttfb {
		var one [1]byte
		if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
			return 0, err
		}
		first = time.Since(start)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: status %d", base, resp.StatusCode)
	}
	if ttfb {
		return first, nil
	}
	return time.Since(start), nil
}

// sequential times n calls one after the other.
func (b *gwBench) sequential(ctx context.Context, base, body string, n int, ttfb bool) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		d, err := b.call(ctx, base, body, ttfb)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// concurrent runs c callers for d and returns the calls per second and the process's
// CPU time per call.
func (b *gwBench) concurrent(ctx context.Context, base string, c int, d time.Duration) (rps, cpuMs float64, err error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	stop := time.Now().Add(d)
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := b.call(ctx, base, gwChatBody, false); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	if firstErr != nil {
		return 0, 0, firstErr
	}
	return float64(n.Load()) / elapsed.Seconds(), float64(cpu) / float64(time.Millisecond) / float64(n.Load()), nil
}

// quantile of ds (sorted in place), in ms.
func gwQuantile(ds []time.Duration, q float64) float64 {
	slices.Sort(ds)
	return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / float64(time.Millisecond)
}

func gwMedian(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// gwFigures are the gateway scenario's measurements.
type gwFigures struct {
	directP50, directP99, addedP50, addedP99 float64
	directRPS, proxiedRPS, addedCPU          float64
	ratio, ratioMin, ratioMax, directCPU     float64
	directTTFB, addedTTFB                    float64
}

func runGatewayBench(ctx context.Context, sc Scenario, dir, _ string) (*Result, error) {
	b, err := startGatewayBench(ctx, dir, sim.Config{Seed: 1}, sluice.DefaultConcurrency)
	if err != nil {
		return nil, err
	}
	defer b.close()
	defer pprof.SetGoroutineLabels(ctx)
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("part", "client")))
	runtime.GC()
	resetPeakRSS()
	start := time.Now()
	var f gwFigures
	var total int64
	// Warm both paths: connections, pools, the budget pool.
	for _, base := range []string{b.direct, b.proxied} {
		if _, err := b.sequential(ctx, base, gwChatBody, 200, false); err != nil {
			return nil, err
		}
	}
	var p50s, p99s, dp50, dp99 []float64
	for round := range gwLatencyRounds {
		d, p, err := b.pair(ctx, round, gwChatBody, gwLatencyN, false)
		if err != nil {
			return nil, err
		}
		total += 2 * gwLatencyN
		d50, d99, q50, q99 := gwQuantile(d, 0.5), gwQuantile(d, 0.99), gwQuantile(p, 0.5), gwQuantile(p, 0.99)
		dp50, dp99 = append(dp50, d50), append(dp99, d99)
		p50s, p99s = append(p50s, q50-d50), append(p99s, q99-d99)
	}
	f.directP50, f.directP99, f.addedP50, f.addedP99 = gwMedian(dp50), gwMedian(dp99), gwMedian(p50s), gwMedian(p99s)

	// Each round's ratio pairs a direct and a proxied measurement taken one after the
	// other, so that a change of the machine's load between rounds cancels out.
	var drps, prps, ratios, cpus, dcpus []float64
	for round := range gwThroughRounds {
		var dr, dc, pr, pc float64
		for _, base := range alternate(round, b.direct, b.proxied) {
			rps, cpu, err := b.concurrent(ctx, base, gwConcurrency, gwThroughFor)
			if err != nil {
				return nil, err
			}
			total += int64(rps * gwThroughFor.Seconds())
			if base == b.direct {
				dr, dc = rps, cpu
			} else {
				pr, pc = rps, cpu
			}
		}
		drps, prps, ratios = append(drps, dr), append(prps, pr), append(ratios, pr/dr)
		cpus, dcpus = append(cpus, pc-dc), append(dcpus, dc)
	}
	f.directRPS, f.proxiedRPS, f.ratio = gwMedian(drps), gwMedian(prps), gwMedian(ratios)
	f.ratioMin, f.ratioMax = slices.Min(ratios), slices.Max(ratios)
	f.addedCPU, f.directCPU = gwMedian(cpus), gwMedian(dcpus)

	var dts, ats []float64
	for round := range gwTTFBRounds {
		d, p, err := b.pair(ctx, round, gwStreamBody, gwTTFBN, true)
		if err != nil {
			return nil, err
		}
		total += 2 * gwTTFBN
		dts, ats = append(dts, gwQuantile(d, 0.5)), append(ats, gwQuantile(p, 0.5)-gwQuantile(d, 0.5))
	}
	f.directTTFB, f.addedTTFB = gwMedian(dts), gwMedian(ats)

	r := &Result{Scenario: sc.Name, Requests: total, Wall: time.Since(start).Seconds(), PeakRSSMB: vmHWMMB(),
		Throughput: f.proxiedRPS, Concurrency: gwConcurrency}
	r.Pass = f.addedP50 <= gwTargetP50 && f.addedP99 <= gwTargetP99 && f.ratio >= gwTargetRatio &&
		f.addedCPU <= gwTargetCPU && r.PeakRSSMB <= gwTargetRSS && f.addedTTFB <= gwTargetTTFB
	r.Verdict = fmt.Sprintf("added p50 %.3f ms (direct %.3f), p99 %.3f ms (direct %.3f); c=%d: %.0f req/s proxied vs %.0f direct, "+
		"%.2f× (rounds %.2f–%.2f×), +%.3f ms CPU a proxied request (direct: %.3f ms for client and simulator); "+
		"stream first byte +%.3f ms (direct %.3f); peak RSS %.0f MB",
		f.addedP50, f.directP50, f.addedP99, f.directP99, gwConcurrency, f.proxiedRPS, f.directRPS,
		f.ratio, f.ratioMin, f.ratioMax, f.addedCPU, f.directCPU, f.addedTTFB, f.directTTFB, r.PeakRSSMB)
	return r, nil
}

// pair times n sequential calls direct and n proxied, in the round's order.
func (b *gwBench) pair(ctx context.Context, round int, body string, n int, ttfb bool) (direct, proxied []time.Duration, err error) {
	for _, base := range alternate(round, b.direct, b.proxied) {
		ds, err := b.sequential(ctx, base, body, n, ttfb)
		if err != nil {
			return nil, nil, err
		}
		if base == b.direct {
			direct = ds
		} else {
			proxied = ds
		}
	}
	return direct, proxied, nil
}

// alternate returns the two bases in the round's order: direct first on even rounds.
func alternate(round int, direct, proxied string) []string {
	if round%2 == 0 {
		return []string{direct, proxied}
	}
	return []string{proxied, direct}
}

// users has c users call n times in all, each alternating proxied and direct calls, so
// that both paths see the same moments of the machine's load.
func (b *gwBench) users(ctx context.Context, c, n int) (proxied, direct []time.Duration, err error) {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for u := range c {
		wg.Go(func() {
			var p, d []time.Duration
			var err error
			for i := u; i < n && err == nil; i += c {
				for _, base := range alternate(i/c+u, b.direct, b.proxied) {
					var t time.Duration
					if t, err = b.call(ctx, base, gwChatBody, false); err != nil {
						break
					}
					if base == b.direct {
						d = append(d, t)
					} else {
						p = append(p, t)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			proxied, direct, errs = append(proxied, p...), append(direct, d...), append(errs, err)
		})
	}
	wg.Wait()
	return proxied, direct, errors.Join(errs...)
}

// runGatewayBatchBench measures online p95 through the gateway while a batch runs on the
// same engine, against idle measured half before the batch and half after.
func runGatewayBatchBench(ctx context.Context, sc Scenario, dir, input string) (*Result, error) {
	b, err := startGatewayBench(ctx, dir, sc.sim, sc.Concurrency)
	if err != nil {
		return nil, err
	}
	defer b.close()
	start := time.Now()
	if _, err := b.sequential(ctx, b.proxied, gwChatBody, 10, false); err != nil { // learn the limits
		return nil, err
	}
	// Direct calls to the simulator, measured the same way, tell the machine's own share
	// of the difference (the batch's CPU) from the gateway's.
	var idle, idleDirect, loaded, loadedDirect []time.Duration
	measure := func(into, intoDirect *[]time.Duration, n int) error {
		p, d, err := b.users(ctx, gwBatchUsers, n)
		*into, *intoDirect = append(*into, p...), append(*intoDirect, d...)
		return err
	}
	if err := measure(&idle, &idleDirect, gwBatchOnlineN/2); err != nil {
		return nil, err
	}
	job := &sluice.Job{ID: newJobID(), State: sluice.JobRunning, Input: input, Options: []byte(`{}`)}
	if err := b.store.CreateJob(ctx, job); err != nil {
		return nil, err
	}
	in, err := os.Open(input)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	run, err := b.engine.Start(ctx, job, ingest.NewSource(bufio.NewReaderSize(in, 1<<20), tokens.Default()))
	if err != nil {
		return nil, err
	}
	// Let the batch fill the engine before measuring.
	for run.Progress().Done < int64(gwBatchSimRPM/60) {
		select {
		case <-run.Done():
			return nil, fmt.Errorf("the batch ended before the online requests: %w", run.Wait())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The batch's rate alone, then beside the online users: online goes first, and the
	// batch fills what the upstream's limit leaves.
	d0, t0 := run.Progress().Done, time.Now()
	select {
	case <-run.Done():
		return nil, fmt.Errorf("the batch ended before the online requests: %w", run.Wait())
	case <-time.After(gwBatchAloneFor):
	}
	d1, t1 := run.Progress().Done, time.Now()
	err = measure(&loaded, &loadedDirect, gwBatchOnlineN)
	batchDone, t2 := run.Progress().Done, time.Now()
	aloneRate, besideRate := float64(d1-d0)/t1.Sub(t0).Seconds(), float64(batchDone-d1)/t2.Sub(t1).Seconds()
	onlineRate := float64(len(loaded)) / t2.Sub(t1).Seconds()
	stopErr := run.StopAndCancel(ctx)
	if werr := run.Wait(); werr != nil && !errors.Is(werr, sluice.ErrInterrupted) {
		stopErr = errors.Join(stopErr, werr)
	}
	if err != nil || stopErr != nil {
		return nil, errors.Join(err, stopErr)
	}
	if err := measure(&idle, &idleDirect, gwBatchOnlineN-gwBatchOnlineN/2); err != nil {
		return nil, err
	}
	p95Idle, p95Loaded := gwQuantile(idle, 0.95), gwQuantile(loaded, 0.95)
	r := &Result{Scenario: sc.Name, Requests: int64(4*gwBatchOnlineN) + batchDone, Wall: time.Since(start).Seconds(),
		PeakRSSMB: peakRSSMB(), Concurrency: sc.Concurrency}
	r.Pass = p95Loaded <= p95Idle*gwTargetP95Ratio
	d95Loaded, d95Idle := gwQuantile(loadedDirect, 0.95), gwQuantile(idleDirect, 0.95)
	r.Verdict = fmt.Sprintf("online p95 %.1f ms beside the batch vs %.1f ms idle = %.2f× (target ≤ %.2f×); p50 %.1f vs %.1f ms; "+
		"straight to the simulator meanwhile: p95 %.1f vs %.1f ms = %.2f×; the batch %.0f req/s alone, %.0f beside %.0f req/s online "+
		"(limit %.0f req/s, also spent by the direct calls)",
		p95Loaded, p95Idle, p95Loaded/p95Idle, gwTargetP95Ratio, gwQuantile(loaded, 0.5), gwQuantile(idle, 0.5),
		d95Loaded, d95Idle, d95Loaded/d95Idle, aloneRate, besideRate, onlineRate, float64(gwBatchSimRPM)/60)
	return r, nil
}
