//go:build unix

package metrics_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/metrics"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

// benchRequests is the size of one run of BenchmarkRunOverhead.
const benchRequests = 20_000

// BenchmarkRunOverhead measures what the metrics cost the engine, as sluice bench
// overhead does (zero-latency simulator, concurrency 256, the SQLite ledger), with no
// Observer ("off") and with Metrics served and scraped every second (15 times Prometheus' default) ("on"):
//
//	go test -run '^$' -bench RunOverhead -count 6 ./metrics/
//
// Compare the req/s of off and on on a quiet machine; cpu-µs/req (the process's user and
// system time per request, simulator included) is steadier on a busy one.
func BenchmarkRunOverhead(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			var elapsed, cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				c0 := cpuTime(b)
				elapsed += runOnce(b, on)
				cpu += cpuTime(b) - c0
				b.StartTimer()
			}
			b.ReportMetric(float64(benchRequests*b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(benchRequests*b.N), "cpu-µs/req")
		})
	}
}

// runOnce runs benchRequests requests and returns how long the run took.
func runOnce(b *testing.B, on bool) time.Duration {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "sluice.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	job := &sluice.Job{ID: "job_bench", State: sluice.JobRunning, Input: "in.jsonl", Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		b.Fatal(err)
	}
	s := sim.New(sim.Config{})
	defer s.Close()
	up, err := openai.New(openai.Config{BaseURL: "http://sim.test/v1", HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := sluice.Config{Concurrency: 256}
	stopScrape := func() {}
	if on {
		m := metrics.New()
		cfg.Observer = m
		srv, err := metrics.Start("127.0.0.1:0", m)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = srv.Shutdown(ctx) }()
		stopScrape = scrapeEvery(b, "http://"+srv.Addr().String()+metrics.Path, time.Second)
	}
	defer stopScrape()
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	run, err := eng.Start(ctx, job, &source{n: benchRequests})
	if err != nil {
		b.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scrapeEvery GETs url every d until the returned function is called.
func scrapeEvery(b *testing.B, url string, d time.Duration) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			resp, err := http.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	return func() { close(done); <-stopped }
}
