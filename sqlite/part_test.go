package sqlite

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
)

var _ batch.Store = (*Store)(nil)

// partRequest is the request the part tests add for line n: every field tells its line.
func partRequest(n int64) sluice.NewRequest {
	return sluice.NewRequest{Line: n, Request: sluice.Request{CustomID: fmt.Sprintf("c%d", n), Method: "POST",
		URL: sluice.EndpointChatCompletions, Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))},
		Estimate: sluice.Estimate{Model: "gpt-4o-mini", PromptTokens: n, MaxOutputTokens: 2 * n}}
}

// partItem is the item of line n as claimed after the given attempts.
func partItem(n int64, attempts, throttled int) sluice.Item {
	r := partRequest(n)
	return sluice.Item{Line: n, Request: r.Request, Estimate: r.Estimate, Attempts: attempts, Throttled: throttled}
}

// partStore opens a ledger at path holding job-1 with lines 1 to n; it is closed when the
// test ends.
func partStore(t testing.TB, path string, n int64) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateJob(t.Context(), &sluice.Job{ID: "job-1", State: sluice.JobRunning}); err != nil {
		t.Fatal(err)
	}
	reqs := make([]sluice.NewRequest, n)
	for i := range reqs {
		reqs[i] = partRequest(int64(i) + 1)
	}
	if err := s.AddRequests(t.Context(), "job-1", reqs); err != nil {
		t.Fatal(err)
	}
	return s
}

// newPart creates a part of job-1 holding lines.
func newPart(t *testing.T, s *Store, lines ...int64) *sluice.Part {
	t.Helper()
	p := &sluice.Part{JobID: "job-1", Round: 1, Endpoint: sluice.EndpointChatCompletions, Model: "gpt-4o-mini",
		Requests: int64(len(lines)), Bytes: 100 * int64(len(lines))}
	if err := s.CreatePart(t.Context(), p, lines); err != nil {
		t.Fatal(err)
	}
	return p
}

// lease is a request's state, owner and lease as stored.
type lease struct {
	State int64
	Owner string
	Until int64
}

// leases returns the stored lease of every line of job-1, by line.
func leases(t *testing.T, s *Store) map[int64]lease {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT line, state, COALESCE(owner, ''), COALESCE(lease_until, 0)
		FROM request WHERE job = (SELECT seq FROM job WHERE id = 'job-1')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int64]lease{}
	for rows.Next() {
		var (
			line int64
			l    lease
		)
		if err := rows.Scan(&line, &l.State, &l.Owner, &l.Until); err != nil {
			t.Fatal(err)
		}
		m[line] = l
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// collect returns the items a call of Pending or PartItems gives.
func collect(t *testing.T, call func(fn func(*sluice.Item) error) error) []sluice.Item {
	t.Helper()
	var items []sluice.Item
	if err := call(func(it *sluice.Item) error {
		items = append(items, *it)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return items
}

// itemLines returns the lines of items.
func itemLines(items []sluice.Item) []int64 {
	lines := make([]int64, len(items))
	for i := range items {
		lines[i] = items[i].Line
	}
	return lines
}

// partItems returns the lines part number of job-1 holds.
func partItems(t *testing.T, s *Store, number int) []int64 {
	t.Helper()
	return itemLines(collect(t, func(fn func(*sluice.Item) error) error {
		return s.PartItems(t.Context(), "job-1", number, fn)
	}))
}

// pending returns the lines Pending gives for job-1.
func pending(t *testing.T, s *Store, after int64, limit int) []int64 {
	t.Helper()
	return itemLines(collect(t, func(fn func(*sluice.Item) error) error {
		return s.Pending(t.Context(), "job-1", after, limit, fn)
	}))
}

func TestCreatePartHoldsLines(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 10)
	before := time.Now()
	holds := [][]int64{{3, 1, 2}, {5}, {8, 7}}
	for i, lines := range holds {
		p := newPart(t, s, lines...)
		if p.Number != i+1 {
			t.Errorf("part %d numbered %d", i+1, p.Number)
		}
		if p.CreatedAt.Before(before) || !p.UpdatedAt.Equal(p.CreatedAt) {
			t.Errorf("part %d: created %v, updated %v; want now, twice", p.Number, p.CreatedAt, p.UpdatedAt)
		}
	}
	want := map[int64]lease{}
	for line := int64(1); line <= 10; line++ {
		want[line] = lease{State: statePending}
	}
	for i, lines := range holds {
		for _, line := range lines {
			want[line] = lease{State: stateInFlight, Owner: fmt.Sprintf("part-%d", i+1), Until: neverExpires}
		}
	}
	if diff := cmp.Diff(want, leases(t, s)); diff != "" {
		t.Errorf("leases (-want +got):\n%s", diff)
	}
	// A part created with its times set keeps them.
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := &sluice.Part{JobID: "job-1", CreatedAt: at, UpdatedAt: at.Add(time.Second)}
	if err := s.CreatePart(t.Context(), p, []int64{9}); err != nil {
		t.Fatal(err)
	}
	parts, err := s.Parts(t.Context(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := parts[len(parts)-1]; p.Number != 4 || !got.CreatedAt.Equal(at) || !got.UpdatedAt.Equal(at.Add(time.Second)) {
		t.Errorf("part %d created %v, updated %v; want part 4 created %v, updated a second later",
			got.Number, got.CreatedAt, got.UpdatedAt, at)
	}
}

func TestCreatePartNeedsPendingLines(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 10)
	newPart(t, s, 1)
	// Job-2's line 1 has the row id that line MaxLine+2 of job-1 would have.
	if err := s.CreateJob(t.Context(), &sluice.Job{ID: "job-2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRequests(t.Context(), "job-2", []sluice.NewRequest{partRequest(1)}); err != nil {
		t.Fatal(err)
	}
	// Line 2 is claimed by a worker, line 3 done.
	if _, err := s.Claim(t.Context(), sluice.ClaimParams{JobID: "job-1", Owner: "w", Max: 2, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t.Context(), "job-1", "w", []sluice.Outcome{{Line: 3, State: sluice.StateDone}}); err != nil {
		t.Fatal(err)
	}
	want := leases(t, s)
	for _, tc := range []struct {
		name  string
		lines []int64
		msg   string
	}{
		{"held by a part", []int64{4, 1}, "1 of its 2 lines are pending"},
		{"claimed by a worker", []int64{2, 4, 5}, "2 of its 3 lines are pending"},
		{"final", []int64{4, 3}, "1 of its 2 lines are pending"},
		{"not in the ledger", []int64{4, 11}, "1 of its 2 lines are pending"},
		{"listed twice", []int64{4, 5, 4}, "2 of its 3 lines are pending"},
		{"line 0", []int64{4, 0}, "line 0 out of range"},
		{"beyond MaxLine", []int64{4, MaxLine + 2}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &sluice.Part{JobID: "job-1", Round: 1}
			err := s.CreatePart(t.Context(), p, tc.lines)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("CreatePart of lines %v: %v, want an error saying %q", tc.lines, err, tc.msg)
			}
			if p.Number != 0 || !p.CreatedAt.IsZero() {
				t.Errorf("a failed CreatePart set the part's number %d, created %v", p.Number, p.CreatedAt)
			}
			if diff := cmp.Diff(want, leases(t, s)); diff != "" {
				t.Errorf("leases changed (-want +got):\n%s", diff)
			}
			if parts, err := s.Parts(t.Context(), "job-1"); err != nil || len(parts) != 1 {
				t.Errorf("%d parts (%v), want only the first", len(parts), err)
			}
		})
	}
	// The failures used no number.
	if p := newPart(t, s, 4); p.Number != 2 {
		t.Errorf("the part after failures numbered %d, want 2", p.Number)
	}
}

func TestClaimNeverTakesPartLines(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 10)
	newPart(t, s, 2, 4, 6, 8)
	want := []int64{1, 3, 5, 7, 9, 10}
	// The first claim takes the pending lines; the second, after their lease of 1ns has
	// expired, takes them again; neither takes a part's.
	for _, what := range []string{"pending", "expired"} {
		items, err := s.Claim(t.Context(), sluice.ClaimParams{JobID: "job-1", Owner: "w", Max: 20, Lease: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		if got := itemLines(items); !slices.Equal(got, want) {
			t.Errorf("claim of %s lines took %v, want %v", what, got, want)
		}
	}
	if got := partItems(t, s, 1); !slices.Equal(got, []int64{2, 4, 6, 8}) {
		t.Errorf("part 1 holds %v after the engine's claims, want [2 4 6 8]", got)
	}
}

func TestPending(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 1300)
	newPart(t, s, 2, 3, 700)
	// Line 1 is released after two attempts, one answered 429; line 4 is claimed.
	if _, err := s.Claim(t.Context(), sluice.ClaimParams{JobID: "job-1", Owner: "w", Max: 2, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(t.Context(), "job-1", "w", []sluice.Outcome{
		{Line: 1, State: sluice.StatePending, Attempts: 2, Throttled: 1},
	}); err != nil {
		t.Fatal(err)
	}
	items := collect(t, func(fn func(*sluice.Item) error) error { return s.Pending(t.Context(), "job-1", 0, 3, fn) })
	want := []sluice.Item{partItem(1, 2, 1), partItem(5, 0, 0), partItem(6, 0, 0)}
	if diff := cmp.Diff(want, items); diff != "" {
		t.Errorf("Pending(after 0, limit 3) (-want +got):\n%s", diff)
	}
	var all []int64 // 1, 5 to 1300 but 700: more than two pages
	for line := int64(1); line <= 1300; line++ {
		if !slices.Contains([]int64{2, 3, 4, 700}, line) {
			all = append(all, line)
		}
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 0, all},
		{0, -1, all},
		{0, 600, all[:600]},
		{0, 1296, all},
		{4, 3, []int64{5, 6, 7}},
		{698, 3, []int64{699, 701, 702}},
		{1299, 0, []int64{1300}},
		{1300, 0, nil},
		{MaxLine, 0, nil},
	} {
		if got := pending(t, s, tc.after, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("Pending(after %d, limit %d): %d lines %v, want %d", tc.after, tc.limit, len(got), clip(got), len(tc.want))
		}
	}
	// fn's error stops it.
	stop := errors.New("stop")
	var seen int
	err := s.Pending(t.Context(), "job-1", 0, 0, func(*sluice.Item) error {
		if seen++; seen == 600 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 600 {
		t.Errorf("Pending with fn failing at the 600th: %v after %d, want its error after 600", err, seen)
	}
}

// clip shortens lines for a message.
func clip(lines []int64) []int64 { return lines[:min(len(lines), 8)] }

func TestPartItems(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 1200)
	var odd, even []int64
	for line := int64(1); line <= 1200; line++ {
		if line%2 == 1 {
			odd = append(odd, line)
		} else if line > 10 {
			even = append(even, line)
		}
	}
	newPart(t, s, odd...)
	slices.Reverse(even)
	newPart(t, s, even...)
	// A worker's leases are not a part's, even under an owner named like one.
	if _, err := s.Claim(t.Context(), sluice.ClaimParams{JobID: "job-1", Owner: "part-1", Max: 2, Lease: time.Minute}); err != nil { // lines 2 and 4
		t.Fatal(err)
	}
	if got := partItems(t, s, 1); !slices.Equal(got, odd) {
		t.Fatalf("part 1 holds %d lines %v, want the %d odd ones", len(got), clip(got), len(odd))
	}
	if got := partItems(t, s, 3); len(got) != 0 {
		t.Errorf("part 3, not created, holds %v", got)
	}
	items := collect(t, func(fn func(*sluice.Item) error) error { return s.PartItems(t.Context(), "job-1", 1, fn) })
	if diff := cmp.Diff(partItem(1, 0, 0), items[0]); diff != "" {
		t.Errorf("first item of part 1 (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	if err := s.PartItems(t.Context(), "job-1", 1, func(*sluice.Item) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("PartItems with fn failing: %v, want its error", err)
	}
}

// partStatus is a part's request as Results and the ledger see it.
type partStatus struct {
	State     sluice.RequestState
	Attempts  int
	Throttled int
	Owner     string
}

func TestCompletePart(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 6)
	newPart(t, s, 1, 2, 3, 4)
	newPart(t, s, 5, 6)
	outcomes := []sluice.Outcome{
		{Line: 1, State: sluice.StateDone, Attempts: 1, StatusCode: 200, Body: json.RawMessage(`{"a":1}`),
			Usage: sluice.Usage{PromptTokens: 10, CompletionTokens: 5, CachedTokens: 2}},
		{Line: 2, State: sluice.StateDone, Attempts: 1, StatusCode: 200,
			Usage: sluice.Usage{PromptTokens: 7, CompletionTokens: 3}},
		{Line: 3, State: sluice.StateFailed, Attempts: 1, StatusCode: 400, ErrorCode: "invalid_request_error",
			Usage: sluice.Usage{PromptTokens: 100}},
		{Line: 4, State: sluice.StatePending, Attempts: 2, Throttled: 1},
		// Part 2's line: ignored.
		{Line: 5, State: sluice.StateDone, Attempts: 1, StatusCode: 200, Usage: sluice.Usage{PromptTokens: 1000}},
	}
	wantUsage := sluice.Usage{PromptTokens: 17, CompletionTokens: 8, CachedTokens: 2}
	for _, round := range []string{"first", "again"} {
		if err := s.CompletePart(t.Context(), "job-1", 1, outcomes); err != nil {
			t.Fatal(err)
		}
		parts, err := s.Parts(t.Context(), "job-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]sluice.Usage{wantUsage, {}}, []sluice.Usage{parts[0].Usage, parts[1].Usage}); diff != "" {
			t.Errorf("%s: usage of parts 1 and 2 (-want +got):\n%s", round, diff)
		}
	}
	got := map[int64]partStatus{}
	err := s.Results(t.Context(), "job-1", 0, 0, func(r *sluice.Result) error {
		got[r.Line] = partStatus{State: r.State}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for line, l := range leases(t, s) {
		if l.State < stateDone {
			got[line] = partStatus{State: decodeState(l.State), Owner: l.Owner}
		}
	}
	for _, it := range collect(t, func(fn func(*sluice.Item) error) error { return s.Pending(t.Context(), "job-1", 0, 0, fn) }) {
		got[it.Line] = partStatus{State: sluice.StatePending, Attempts: it.Attempts, Throttled: it.Throttled}
	}
	want := map[int64]partStatus{
		1: {State: sluice.StateDone},
		2: {State: sluice.StateDone},
		3: {State: sluice.StateFailed},
		4: {State: sluice.StatePending, Attempts: 2, Throttled: 1},
		5: {State: sluice.StateInFlight, Owner: "part-2"},
		6: {State: sluice.StateInFlight, Owner: "part-2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests after CompletePart (-want +got):\n%s", diff)
	}
	if err := s.CompletePart(t.Context(), "job-1", 3, outcomes[:1]); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("CompletePart of a part not created: %v, want ErrNotFound", err)
	}
	bad := []sluice.Outcome{{Line: 5, State: sluice.StateDone, Usage: sluice.Usage{PromptTokens: 1}}, {Line: 6, State: "lost"}}
	if err := s.CompletePart(t.Context(), "job-1", 2, bad); err == nil {
		t.Error("an outcome with an unknown state was accepted")
	}
	if got := partItems(t, s, 2); !slices.Equal(got, []int64{5, 6}) {
		t.Errorf("part 2 holds %v after a failed CompletePart, want [5 6]", got)
	}
}

func TestUpdatePart(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 3)
	newPart(t, s, 1)
	p := newPart(t, s, 2, 3)
	if err := s.CompletePart(t.Context(), "job-1", 2, []sluice.Outcome{
		{Line: 2, State: sluice.StateDone, Usage: sluice.Usage{PromptTokens: 4, CompletionTokens: 5, CachedTokens: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	created := p.CreatedAt
	want := *p
	want.Usage = sluice.Usage{PromptTokens: 4, CompletionTokens: 5, CachedTokens: 1}
	// Every field changes; only those UpdatePart saves are kept.
	*p = sluice.Part{
		JobID: "job-1", Number: 2, Round: 9, Endpoint: sluice.EndpointEmbeddings, Model: "other", Requests: 99, Bytes: 999,
		FileID: "file-1", BatchID: "batch_1", Status: sluice.BatchCompleted,
		Counts:       sluice.RequestCounts{Total: 2, Completed: 1, Failed: 1},
		OutputFileID: "file-out", ErrorFileID: "file-err", Error: "line 2: too long", Collected: true,
		Usage:     sluice.Usage{PromptTokens: 1000},
		CreatedAt: created.Add(-time.Hour), UpdatedAt: created.Add(-time.Hour),
	}
	if err := s.UpdatePart(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if p.UpdatedAt.Before(created) {
		t.Errorf("UpdatedAt %v, want now, after its creation %v", p.UpdatedAt, created)
	}
	want.FileID, want.BatchID, want.Status, want.Counts = p.FileID, p.BatchID, p.Status, p.Counts
	want.OutputFileID, want.ErrorFileID, want.Error, want.Collected = p.OutputFileID, p.ErrorFileID, p.Error, p.Collected
	want.UpdatedAt = p.UpdatedAt
	parts, err := s.Parts(t.Context(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, parts[1]); diff != "" {
		t.Errorf("part after UpdatePart (-want +got):\n%s", diff)
	}
	if parts[0].FileID != "" || parts[0].Collected {
		t.Errorf("UpdatePart of part 2 changed part 1: %+v", parts[0])
	}
	if err := s.UpdatePart(t.Context(), &sluice.Part{JobID: "job-1", Number: 3}); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("UpdatePart of a part not created: %v, want ErrNotFound", err)
	}
}

func TestPartsKeptAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := partStore(t, path, 5)
	parts, err := s.Parts(t.Context(), "job-1")
	if err != nil || parts == nil || len(parts) != 0 {
		t.Errorf("Parts of a job without parts: %v, %v; want an empty slice", parts, err)
	}
	var want []*sluice.Part
	for _, lines := range [][]int64{{5}, {1, 3}, {2}} {
		want = append(want, newPart(t, s, lines...))
	}
	want[1].FileID, want[1].Status = "file-2", sluice.BatchInProgress
	if err := s.UpdatePart(t.Context(), want[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Parts(t.Context(), "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parts after reopening (-want +got):\n%s", diff)
	}
	if lines := partItems(t, s, 2); !slices.Equal(lines, []int64{1, 3}) {
		t.Errorf("part 2 holds %v after reopening, want [1 3]", lines)
	}
}

func TestPartsOfUnknownJob(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 1)
	ctx := t.Context()
	_, partsErr := s.Parts(ctx, "nope")
	none := func(*sluice.Item) error { return nil }
	for name, err := range map[string]error{
		"CreatePart":   s.CreatePart(ctx, &sluice.Part{JobID: "nope"}, nil),
		"UpdatePart":   s.UpdatePart(ctx, &sluice.Part{JobID: "nope", Number: 1}),
		"Parts":        partsErr,
		"Pending":      s.Pending(ctx, "nope", 0, 0, none),
		"PartItems":    s.PartItems(ctx, "nope", 1, none),
		"CompletePart": s.CompletePart(ctx, "nope", 1, []sluice.Outcome{{Line: 1, State: sluice.StateDone}}),
	} {
		if !errors.Is(err, sluice.ErrNotFound) {
			t.Errorf("%s of an unknown job: %v, want ErrNotFound", name, err)
		}
	}
}

// addLarge adds lines 1 to n to job id, pending. SQLite makes them itself: through
// AddRequests they would take most of the time of a test under the race detector.
func addLarge(tb testing.TB, s *Store, id string, n int64) {
	tb.Helper()
	seq, err := s.jobSeq(tb.Context(), id)
	if err != nil {
		tb.Fatal(err)
	}
	for _, q := range []string{
		`WITH RECURSIVE n (line) AS (SELECT 1 UNION ALL SELECT line + 1 FROM n WHERE line < ?2)
		INSERT INTO request (id, state, custom_id, holds_id) SELECT ?1 << 32 | line, 0, 'c' || line, 1 FROM n`,
		`INSERT INTO request_input (id, method, url) SELECT id, 'POST', '/v1/embeddings' FROM request WHERE job = ?1`,
	} {
		if _, err := s.w.ExecContext(tb.Context(), q, seq, n); err != nil {
			tb.Fatal(err)
		}
	}
}

// holdAll creates a part of job id holding lines n to 1 (in that order, as any order
// goes), and reads them back.
func holdAll(tb testing.TB, s *Store, id string, n int64) {
	tb.Helper()
	lines := make([]int64, n)
	for i := range lines {
		lines[i] = n - int64(i)
	}
	if err := s.CreatePart(tb.Context(), &sluice.Part{JobID: id}, lines); err != nil {
		tb.Fatal(err)
	}
	want := int64(1)
	if err := s.PartItems(tb.Context(), id, 1, func(it *sluice.Item) error {
		if it.Line != want {
			return fmt.Errorf("line %d, want %d", it.Line, want)
		}
		want++
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	if want != n+1 {
		tb.Fatalf("part holds %d lines, want %d", want-1, n)
	}
}

// TestLargePart holds thousands of lines in one part, pages of PartItems and Pending
// many; BenchmarkCreatePart holds 50,000, the most a provider batch takes.
func TestLargePart(t *testing.T) {
	const n = 5000
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 0)
	addLarge(t, s, "job-1", n+1)
	holdAll(t, s, "job-1", n)
	if got := pending(t, s, 0, 0); !slices.Equal(got, []int64{n + 1}) {
		t.Errorf("pending %v, want [%d]", got, n+1)
	}
}

// BenchmarkCreatePart creates parts of 50,000 lines, the most a provider batch takes,
// and reads their requests back, as sluice batch does to upload them.
func BenchmarkCreatePart(b *testing.B) {
	const n = 50_000
	s := partStore(b, filepath.Join(b.TempDir(), "ledger.db"), 0)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		id := fmt.Sprintf("large-%d", i)
		if err := s.CreateJob(b.Context(), &sluice.Job{ID: id}); err != nil {
			b.Fatal(err)
		}
		addLarge(b, s, id, n)
		b.StartTimer()
		holdAll(b, s, id, n)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "lines/s")
}

// TestPartQueryPlans checks, as TestQueryPlans does for the others, that the queries of
// parts start from the index they were written for: the partial index request_part only
// when the query spells its lease out as the index does.
func TestPartQueryPlans(t *testing.T) {
	s := partStore(t, filepath.Join(t.TempDir(), "ledger.db"), 1)
	if got := strconv.FormatInt(neverExpires, 10); got != sqlNeverExpires {
		t.Fatalf("sqlNeverExpires %s, want %s", sqlNeverExpires, got)
	}
	for query, want := range map[string]string{
		sqlHoldLines:    "SEARCH request USING INTEGER PRIMARY KEY (rowid=?)",
		sqlPendingItems: "SEARCH r USING INDEX request_pending (job=? AND line>?)",
		sqlPartItems:    "SEARCH r USING INDEX request_part (job=? AND owner=? AND line>?)",
		sqlParts:        "SEARCH part USING INDEX sqlite_autoindex_part_1 (job=?)",
		sqlUpdatePart:   "SEARCH part USING INDEX sqlite_autoindex_part_1 (job=? AND number=?)",
		sqlAddPartUsage: "SEARCH part USING INDEX sqlite_autoindex_part_1 (job=? AND number=?)",
	} {
		var (
			id, parent, unused int
			first              string
		)
		args := make([]any, strings.Count(query, "?"))
		if err := s.r.QueryRowContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...).Scan(&id, &parent, &unused, &first); err != nil {
			t.Fatal(err)
		}
		if first != want {
			t.Errorf("plan of %s\nstarts %q, want %q", query, first, want)
		}
	}
}

// TestMigrateToParts opens a ledger of schema version 4, made before parts, with a job in
// it: the job and its requests are kept, and parts work.
func TestMigrateToParts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	ms, err := loadMigrations(migrations)
	if err != nil {
		t.Fatal(err)
	}
	v4 := fstest.MapFS{}
	for _, m := range ms {
		if m.Version <= 4 {
			v4["migration/"+m.Name+".sql"] = &fstest.MapFile{Data: []byte(m.SQL)}
		}
	}
	db := openRaw(t, path)
	if err := migrate(t.Context(), db, v4); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, db); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("versions %v, want [1 2 3 4]", got)
	}
	old := &Store{w: db, r: db, jobs: map[string]int64{}}
	before7 := func(q string) bool { return !strings.Contains(q, "orphaned") && !strings.Contains(q, "repaid") }
	if err := old.st.prepareOf(t.Context(), db, before7); err != nil {
		t.Fatal(err)
	}
	if err := old.bulk.prepare(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	if err := old.CreateJob(t.Context(), &sluice.Job{ID: "job-1"}); err != nil {
		t.Fatal(err)
	}
	if err := old.AddRequests(t.Context(), "job-1", []sluice.NewRequest{partRequest(1), partRequest(2)}); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(old.st.close(), old.bulk.close()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := versions(t, s.w); len(got) < 5 || got[4] != 5 {
		t.Errorf("versions %v after opening, want 5 among them", got)
	}
	newPart(t, s, 2)
	if got := pending(t, s, 0, 0); !slices.Equal(got, []int64{1}) {
		t.Errorf("pending %v, want [1]", got)
	}
	if got := partItems(t, s, 1); !slices.Equal(got, []int64{2}) {
		t.Errorf("part 1 holds %v, want [2]", got)
	}
}
