package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/postgres"
)

// TestOpenAtOnce opens one new schema from many stores at once, as workers started
// together do: the migrations apply once, under the advisory lock, and every store opens.
func TestOpenAtOnce(t *testing.T) {
	t.Parallel()
	u, schema := schemaURL(t)
	const n = 8
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("store %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	conn, err := pgx.Connect(t.Context(), testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var versions int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{schema, "schema_version"}.Sanitize()).
		Scan(&versions); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("migration", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if versions != len(files) {
		t.Errorf("%d schema versions recorded, want %d, one per migration", versions, len(files))
	}
}

// TestSchemaParam checks the schema parameter: the store's tables go in that schema only,
// and an empty one is refused.
func TestSchemaParam(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	if err := st.CreateJob(t.Context(), &sluice.Job{ID: "job-a", State: sluice.JobRunning}); err != nil {
		t.Fatal(err)
	}
	other := openStore(t) // another schema: another ledger
	if _, err := other.Job(t.Context(), "job-a"); err == nil {
		t.Error("a store in another schema sees job-a")
	}
	base := testURL(t)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	if _, err := postgres.Open(t.Context(), base+sep+"schema="); err == nil || !strings.Contains(err.Error(), "empty schema") {
		t.Errorf("open with an empty schema: %v, want it refused", err)
	}
}

// TestOpenHidesPassword checks that a connection error does not repeat the URL's password.
func TestOpenHidesPassword(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"postgres://sluice:s3cret-pw@127.0.0.1:1/test?connect_timeout=1&schema=x",
		"postgres://sluice:s3cret-pw@%zz/test",
	} {
		_, err := postgres.Open(t.Context(), u)
		if err == nil {
			t.Fatalf("open %s succeeded", u)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("open error shows the password: %v", err)
		}
	}
}

// TestWorkersShareOneJob runs workers on separate stores (separate pools, as on separate
// machines) over one job: every line is answered exactly once, and a worker that stops
// without releasing its leases has them taken over once they expire.
func TestWorkersShareOneJob(t *testing.T) {
	t.Parallel()
	u, _ := schemaURL(t)
	const lines, workers = 2000, 4
	stores := make([]*postgres.Store, workers)
	for i := range stores {
		st, err := postgres.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores[i] = st
	}
	ctx := t.Context()
	if err := stores[0].CreateJob(ctx, &sluice.Job{ID: "job-a", State: sluice.JobRunning}); err != nil {
		t.Fatal(err)
	}
	reqs := make([]sluice.NewRequest, lines)
	for i := range reqs {
		n := int64(i + 1)
		reqs[i] = sluice.NewRequest{Line: n, Request: sluice.Request{CustomID: fmt.Sprint(n), Method: "POST",
			URL: sluice.EndpointEmbeddings, Body: json.RawMessage(`{"input":"x"}`)}}
	}
	if err := stores[0].AddRequests(ctx, "job-a", reqs); err != nil {
		t.Fatal(err)
	}
	// A dead worker: it claims 50 lines for 50 ms and never answers.
	dead, err := stores[1].Claim(ctx, sluice.ClaimParams{JobID: "job-a", Owner: "dead", Max: 50, Lease: 50 * time.Millisecond})
	if err != nil || len(dead) != 50 {
		t.Fatalf("dead worker claimed %d: %v", len(dead), err)
	}
	var (
		mu   sync.Mutex
		seen = map[int64]string{}
		wg   sync.WaitGroup
	)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("w%d", w)
			for {
				items, err := stores[w].Claim(ctx, sluice.ClaimParams{JobID: "job-a", Owner: owner, Max: 64, Lease: time.Minute})
				if err != nil {
					errs[w] = err
					return
				}
				if len(items) == 0 {
					s, err := stores[w].Stats(ctx, "job-a")
					if err != nil {
						errs[w] = err
						return
					}
					if s.Done == lines {
						return
					}
					continue // the dead worker's leases have not expired yet
				}
				outcomes := make([]sluice.Outcome, len(items))
				mu.Lock()
				for i, it := range items {
					if other, dup := seen[it.Line]; dup {
						errs[w] = fmt.Errorf("line %d claimed by %s and %s", it.Line, other, owner)
					}
					seen[it.Line] = owner
					outcomes[i] = sluice.Outcome{Line: it.Line, State: sluice.StateDone, Attempts: 1, StatusCode: 200}
				}
				mu.Unlock()
				if err := stores[w].Complete(ctx, "job-a", owner, outcomes); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}
	if len(seen) != lines {
		t.Errorf("%d lines answered, want %d", len(seen), lines)
	}
	for _, it := range dead {
		if seen[it.Line] == "" {
			t.Errorf("the dead worker's line %d was never taken over", it.Line)
		}
	}
	// The dead worker's late answers change nothing.
	if err := stores[1].Complete(ctx, "job-a", "dead", []sluice.Outcome{{Line: dead[0].Line, State: sluice.StateFailed,
		Attempts: 1, StatusCode: 500}}); err != nil {
		t.Fatal(err)
	}
	s, err := stores[0].Stats(ctx, "job-a")
	if err != nil {
		t.Fatal(err)
	}
	if s.Done != lines || s.Failed != 0 {
		t.Errorf("done %d, failed %d; want %d, 0", s.Done, s.Failed, lines)
	}
}

// TestClaimFindsLinesReleasedElsewhere checks that lines another process returns to
// pending below where this store's claims start are still claimed: once the lines above
// are taken, a claim looks below.
func TestClaimFindsLinesReleasedElsewhere(t *testing.T) {
	t.Parallel()
	u, _ := schemaURL(t)
	a, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	if err := a.CreateJob(ctx, &sluice.Job{ID: "job-a", State: sluice.JobRunning}); err != nil {
		t.Fatal(err)
	}
	var reqs []sluice.NewRequest
	for n := int64(1); n <= 20; n++ {
		reqs = append(reqs, sluice.NewRequest{Line: n, Request: sluice.Request{CustomID: fmt.Sprint(n), Method: "POST",
			URL: sluice.EndpointEmbeddings}})
	}
	if err := a.AddRequests(ctx, "job-a", reqs); err != nil {
		t.Fatal(err)
	}
	claim := func(owner string, n int) []int64 {
		t.Helper()
		items, err := a.Claim(ctx, sluice.ClaimParams{JobID: "job-a", Owner: owner, Max: n, Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var ls []int64
		for _, it := range items {
			ls = append(ls, it.Line)
		}
		return ls
	}
	if got := claim("w1", 5); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("first claim %v", got)
	}
	if err := b.Release(ctx, "job-a", ""); err != nil { // another process releases them
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for range 4 {
		for _, l := range claim("w2", 10) {
			if seen[l] {
				t.Errorf("line %d claimed twice", l)
			}
			seen[l] = true
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d lines claimed after the release elsewhere, want all 20", len(seen))
	}
}
