package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/storetest"
)

// The store implements every optional part of the conformance suite.
var (
	_ storetest.PartStore    = (*sqlite.Store)(nil)
	_ storetest.RateStore    = (*sqlite.Store)(nil)
	_ storetest.CacheStore   = (*sqlite.Store)(nil)
	_ storetest.HistoryStore = (*sqlite.Store)(nil)
	_ storetest.DeleteStore  = (*sqlite.Store)(nil)
	_ service.Store          = (*sqlite.Store)(nil)
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path)) // never returns until killed
	}
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sluice.Store {
		return open(t, filepath.Join(t.TempDir(), "ledger.db"))
	})
}

func TestConformanceReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) func() sluice.Store {
		path := filepath.Join(t.TempDir(), "ledger.db")
		return func() sluice.Store { return open(t, path) }
	})
}

// open opens the ledger at path; the caller closes it.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// line is the request the tests add for line n of a job.
func line(n int64) sluice.NewRequest {
	return sluice.NewRequest{
		Line:     n,
		Request:  sluice.Request{CustomID: fmt.Sprintf("r%d", n), Method: "POST", URL: sluice.EndpointEmbeddings, Body: json.RawMessage(`{"input":"x"}`)},
		Estimate: sluice.Estimate{Model: "m", PromptTokens: 1},
	}
}

func lines(from, to int64) []sluice.NewRequest {
	var reqs []sluice.NewRequest
	for n := from; n <= to; n++ {
		reqs = append(reqs, line(n))
	}
	return reqs
}

// answer is the body the tests record for line n.
func answer(n int64) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"line":%d}`, n)) }

// work claims and answers up to n requests of the job as owner, and returns how many it did.
func work(ctx context.Context, st sluice.Store, jobID, owner string, n int) (int, error) {
	items, err := st.Claim(ctx, sluice.ClaimParams{JobID: jobID, Owner: owner, Max: n, Lease: time.Minute})
	if err != nil || len(items) == 0 {
		return 0, err
	}
	outcomes := make([]sluice.Outcome, len(items))
	for i, it := range items {
		outcomes[i] = sluice.Outcome{Line: it.Line, State: sluice.StateDone, Attempts: it.Attempts + 1,
			StatusCode: 200, Body: answer(it.Line), Latency: time.Millisecond}
	}
	return len(items), st.Complete(ctx, jobID, owner, outcomes)
}

// checkAnswers checks that every result of the job is done and carries its own answer,
// and returns how many there are.
func checkAnswers(t *testing.T, st sluice.Store, jobID string) int64 {
	t.Helper()
	var n int64
	err := st.Results(t.Context(), jobID, 0, 0, func(r *sluice.Result) error {
		n++
		if r.State != sluice.StateDone || string(r.Body) != string(answer(r.Line)) {
			return fmt.Errorf("line %d: %s %s, want done with its own answer", r.Line, r.State, r.Body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenCreatesDirectoryAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "ledger.db")
	st := open(t, path)
	job := &sluice.Job{ID: "job-1", State: sluice.JobRunning, Options: json.RawMessage(`{"x":1}`)}
	if err := st.CreateJob(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRequests(t.Context(), "job-1", lines(1, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := work(t.Context(), st, "job-1", "w", 4); err != nil {
		t.Fatal(err)
	}
	wantJob, _ := st.Job(t.Context(), "job-1")
	wantStats, _ := st.Stats(t.Context(), "job-1")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = open(t, path)
	defer st.Close()
	gotJob, err := st.Job(t.Context(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantJob, gotJob); diff != "" {
		t.Errorf("job after reopening (-want +got):\n%s", diff)
	}
	gotStats, err := st.Stats(t.Context(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantStats, gotStats); diff != "" {
		t.Errorf("stats after reopening (-want +got):\n%s", diff)
	}
	if n := checkAnswers(t, st, "job-1"); n != 4 {
		t.Errorf("%d results after reopening, want 4", n)
	}
}

func TestOpenRejectsOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := sqlite.Open(t.Context(), path); err == nil {
		st.Close()
		t.Fatal("opened a text file as a ledger")
	}
}

func TestUnknownJob(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer st.Close()
	ctx := t.Context()
	_, claimErr := st.Claim(ctx, sluice.ClaimParams{JobID: "nope", Owner: "w", Max: 1, Lease: time.Minute})
	_, statsErr := st.Stats(ctx, "nope")
	for name, err := range map[string]error{
		"UpdateJob":   st.UpdateJob(ctx, &sluice.Job{ID: "nope"}),
		"AddRequests": st.AddRequests(ctx, "nope", lines(1, 1)),
		"Claim":       claimErr,
		"Complete":    st.Complete(ctx, "nope", "w", []sluice.Outcome{{Line: 1, State: sluice.StateDone}}),
		"Renew":       st.Renew(ctx, sluice.RenewParams{JobID: "nope", Owner: "w", Lease: time.Minute}),
		"Release":     st.Release(ctx, "nope", ""),
		"Results":     st.Results(ctx, "nope", 0, 0, func(*sluice.Result) error { return nil }),
		"Stats":       statsErr,
	} {
		if !errors.Is(err, sluice.ErrNotFound) {
			t.Errorf("%s of an unknown job: %v, want ErrNotFound", name, err)
		}
	}
}

func TestBatchesAreAtomic(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer st.Close()
	ctx := t.Context()
	if err := st.CreateJob(ctx, &sluice.Job{ID: "job-1"}); err != nil {
		t.Fatal(err)
	}
	bad := append(lines(1, 5), line(sqlite.MaxLine+1))
	if err := st.AddRequests(ctx, "job-1", bad); err == nil {
		t.Fatal("a line number beyond MaxLine was accepted")
	}
	if s, _ := st.Stats(ctx, "job-1"); s.Total != 0 {
		t.Errorf("%d lines stored from a failed batch, want 0", s.Total)
	}
	if err := st.AddRequests(ctx, "job-1", lines(1, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(ctx, sluice.ClaimParams{JobID: "job-1", Owner: "w", Max: 3, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	outcomes := []sluice.Outcome{{Line: 1, State: sluice.StateDone, Attempts: 1}, {Line: 2, State: "lost"}}
	if err := st.Complete(ctx, "job-1", "w", outcomes); err == nil {
		t.Fatal("an outcome with an unknown state was accepted")
	}
	if s, _ := st.Stats(ctx, "job-1"); s.Done != 0 {
		t.Errorf("%d outcomes kept from a failed batch, want 0", s.Done)
	}
}

// TestTwoStoresShareOneJob runs two Stores on one file, as two processes would, both
// working on one job while a third adds its lines.
func TestTwoStoresShareOneJob(t *testing.T) {
	const total = 3000
	path := filepath.Join(t.TempDir(), "ledger.db")
	a, b, c := open(t, path), open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	defer c.Close()
	ctx := t.Context()
	if err := a.CreateJob(ctx, &sluice.Job{ID: "job-1"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	added := make(chan struct{}, 2)   // poked after each batch
	ingestDone := make(chan struct{}) // closed after the last
	wg.Go(func() {
		defer close(ingestDone)
		for from := int64(1); from <= total; from += 100 {
			if err := c.AddRequests(ctx, "job-1", lines(from, from+99)); err != nil {
				errs <- fmt.Errorf("add: %w", err)
				return
			}
			for range cap(added) {
				select {
				case added <- struct{}{}:
				default:
				}
			}
		}
	})
	for name, st := range map[string]*sqlite.Store{"a": a, "b": b} {
		wg.Go(func() {
			drain := false
			for {
				n, err := work(ctx, st, "job-1", name, 32)
				if err != nil {
					errs <- fmt.Errorf("worker %s: %w", name, err)
					return
				}
				if n > 0 {
					continue
				}
				if drain { // every line was in: what is left is another worker's
					return
				}
				select {
				case <-added:
				case <-ingestDone:
					drain = true
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, err := a.Stats(ctx, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != total || s.Done != total || s.Attempts != total {
		t.Errorf("total %d, done %d, attempts %d; want %d of each: every line answered once", s.Total, s.Done, s.Attempts, total)
	}
	if n := checkAnswers(t, b, "job-1"); n != total {
		t.Errorf("%d results, want %d", n, total)
	}
}

func TestIntegrityAfterUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	st := open(t, path)
	if err := st.CreateJob(t.Context(), &sluice.Job{ID: "job-1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRequests(t.Context(), "job-1", lines(1, 500)); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := work(t.Context(), st, "job-1", "w", 64)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	checkIntegrity(t, path)
}

// checkIntegrity runs SQLite's own consistency check of the file's pages and indexes.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Errorf("integrity check: %s", res)
	}
}
