package ui_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/ui"
)

// timedStore sums the time the dashboard spends in the store.
type timedStore struct {
	*sqlite.Store
	mu    sync.Mutex
	spent time.Duration
	calls int
}

func (s *timedStore) time(start time.Time) {
	s.mu.Lock()
	s.spent += time.Since(start)
	s.calls++
	s.mu.Unlock()
}

func (s *timedStore) Job(ctx context.Context, id string) (*sluice.Job, error) {
	defer s.time(time.Now())
	return s.Store.Job(ctx, id)
}

func (s *timedStore) Jobs(ctx context.Context, fp string) ([]*sluice.Job, error) {
	defer s.time(time.Now())
	return s.Store.Jobs(ctx, fp)
}

func (s *timedStore) Stats(ctx context.Context, id string) (*sluice.Stats, error) {
	defer s.time(time.Now())
	return s.Store.Stats(ctx, id)
}

func (s *timedStore) JobCounts(ctx context.Context, id string) (*sluice.JobCounts, error) {
	defer s.time(time.Now())
	return s.Store.JobCounts(ctx, id)
}

func (s *timedStore) Timeline(ctx context.Context, id string, since time.Time) ([]sluice.TimelineBucket, error) {
	defer s.time(time.Now())
	return s.Store.Timeline(ctx, id, since)
}

func (s *timedStore) Failures(ctx context.Context, id string, after int64, code string, limit int) ([]*sluice.Result, error) {
	defer s.time(time.Now())
	return s.Store.Failures(ctx, id, after, code, limit)
}

// bigJob makes a running job of n requests in a new store: 1% failed with 429, the rest
// done, and an hour of one-second timeline buckets with samples.
func bigJob(b *testing.B, n int) (*sqlite.Store, string) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "big.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	job := &sluice.Job{ID: "job_big", State: sluice.JobRunning, CreatedAt: time.Now(), Input: "big.jsonl", Fingerprint: "fp", Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		b.Fatal(err)
	}
	const batch = 10000
	reqs := make([]sluice.NewRequest, 0, batch)
	for line := 1; line <= n; line++ {
		reqs = append(reqs, sluice.NewRequest{Line: int64(line), Request: sluice.Request{CustomID: fmt.Sprint("r", line), Method: "POST",
			URL: sluice.EndpointChatCompletions, Body: json.RawMessage(`{"model":"gpt-4o-mini","messages":[]}`)},
			Estimate: sluice.Estimate{Model: "gpt-4o-mini", PromptTokens: 10, MaxOutputTokens: 10}})
		if len(reqs) == batch || line == n {
			if err := st.AddRequests(ctx, job.ID, reqs); err != nil {
				b.Fatal(err)
			}
			reqs = reqs[:0]
		}
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE request SET state = CASE WHEN id % 100 = 0 THEN 3 ELSE 2 END,
		status_code = CASE WHEN id % 100 = 0 THEN 429 ELSE 200 END, latency = 50000000 + (id % 997) * 100000,
		finished_at = ?, usage_prompt = 10, usage_completion = 20`, time.Now().UnixNano()); err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	var bs []sluice.TimelineBucket
	for i := range 3600 {
		var h sluice.Histogram
		for j := range 20 {
			h = h.Add(time.Duration(40+j*5) * time.Millisecond)
		}
		bs = append(bs, sluice.TimelineBucket{Start: start.Add(time.Duration(i) * time.Second), Width: time.Second,
			Completed: 275, Failed: 3, Throttled: 3, Errors: map[string]int64{"429": 3}, Latency: h, Cost: 0.01,
			Usage: sluice.Usage{PromptTokens: 2750, CompletionTokens: 5500},
			Sample: &sluice.RunSample{At: start.Add(time.Duration(i+1) * time.Second), Total: int64(n), IngestDone: true,
				Done: int64(275 * (i + 1)), Failed: int64(3 * (i + 1)), InFlight: 64, RPM: 30000, TPM: 3e6, Learned: true, Window: 64}})
		if len(bs) == 600 {
			if err := st.AppendTimeline(ctx, job.ID, bs); err != nil {
				b.Fatal(err)
			}
			bs = bs[:0]
		}
	}
	return st, job.ID
}

// BenchmarkDashboardRefresh measures one refresh of a running 1,000,000-request job's
// page (its summary, its charts' timeline and its failed requests, as the page polls
// them) while a recorder adds a bucket a second: store-ms/op is the time spent in the
// store, the budget being 5 ms.
//
//	go test -run '^$' -bench DashboardRefresh -benchtime 200x ./ui/
func BenchmarkDashboardRefresh(b *testing.B) {
	st, id := bigJob(b, 1_000_000)
	ts := &timedStore{Store: st}
	h, err := ui.New(ui.Config{Store: ts})
	if err != nil {
		b.Fatal(err)
	}
	paths := []string{"/ui/part/jobs/" + id + "/summary", "/ui/api/jobs/" + id + "/timeline", "/ui/part/jobs/" + id + "/failures"}
	refresh := func() {
		for _, p := range paths {
			if code, body := get(b, h, p); code != http.StatusOK {
				b.Fatalf("GET %s: %d %s", p, code, body)
			}
		}
	}
	t0 := time.Now()
	refresh() // the first load reads the whole timeline once
	b.Logf("first load (the whole hour of timeline): %s, %s in the store", time.Since(t0), ts.spent)
	t0 = time.Now()
	if _, err := st.Stats(context.Background(), id); err != nil {
		b.Fatal(err)
	}
	b.Logf("for comparison, one scan of the ledger (Stats): %s", time.Since(t0))
	next := time.Now().Truncate(time.Second)
	ts.spent, ts.calls = 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		bucket := sluice.TimelineBucket{Start: next.Add(time.Duration(i) * time.Second), Width: time.Second, Completed: 275,
			Sample: &sluice.RunSample{At: time.Now(), Total: 1_000_000, Done: 990_000, Failed: 9_000}}
		if err := st.AppendTimeline(context.Background(), id, []sluice.TimelineBucket{bucket}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		refresh()
	}
	b.StopTimer()
	b.ReportMetric(float64(ts.spent.Microseconds())/1000/float64(b.N), "store-ms/op")
	b.ReportMetric(float64(ts.calls)/float64(b.N), "store-calls/op")
}
