package pipeline_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

var benchDocs = flag.Int("pipeline.docs", 2000, "documents in BenchmarkRun")

// BenchmarkRun runs 3 tasks over -pipeline.docs documents against the zero-latency
// in-process simulator, then again from the cache, and reports documents per second and
// the process's peak RSS:
//
//	go test ./pipeline/ -run '^$' -bench Run -benchtime 1x -args -pipeline.docs 100000
func BenchmarkRun(b *testing.B) {
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "docs.csv"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "doc_id,text")
	for i := range *benchDocs {
		fmt.Fprintf(w, "d%07d,Document %d: Acme Corp and Ada Lovelace announced chip number %d in Zürich.\n", i, i, i*7)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	spec, err := pipeline.Parse(strings.NewReader(`
model: gpt-4o-mini
input: docs.csv
id: doc_id
tasks:
  summary: {system: "Summarise in two sentences.", user: "{{.text}}", max_tokens: 120}
  category: {system: "Classify: tech, business, health or other.", user: "{{.text}}", max_tokens: 5}
  keywords: {user: "Keywords of: {{.text}}", max_tokens: 40}
`), filepath.Join(dir, "pipeline.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	for range b.N {
		s := sim.New(sim.Config{})
		up, err := openai.New(openai.Config{BaseURL: simURL, HTTPClient: &http.Client{Transport: s.Transport()}})
		if err != nil {
			b.Fatal(err)
		}
		st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "ledger.db"))
		if err != nil {
			b.Fatal(err)
		}
		eng, err := sluice.New(st, up, sluice.Config{Concurrency: 64})
		if err != nil {
			b.Fatal(err)
		}
		docs, err := pipeline.ReadFile(spec.Input, spec.ID)
		if err != nil {
			b.Fatal(err)
		}
		p := pipeline.NewPlan(spec, docs, tokens.Default(), nil)
		cfg := pipeline.RunConfig{BaseURL: simURL, Estimator: tokens.Default(), Cache: st}
		for _, pass := range []string{"cold", "cached"} {
			b.StartTimer()
			start := time.Now()
			table, rep, err := pipeline.Run(context.Background(), eng, st, p, cfg)
			elapsed := time.Since(start)
			b.StopTimer()
			if err == nil { // untimed, as before, but in the peak RSS
				err = table.WriteCSV(io.Discard)
			}
			if err != nil || rep.OK != 3*len(docs) {
				b.Fatalf("%s: %v, report %+v", pass, err, rep)
			}
			if err := table.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(docs))/elapsed.Seconds(), pass+"_docs/s")
		}
		p.Close()
		st.Close()
		s.Close()
	}
	b.ReportMetric(float64(peakRSS()), "peak_RSS_MiB")
}

// peakRSS is the process's peak resident set in MiB (Linux; 0 elsewhere).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb / 1024
		}
	}
	return 0
}
