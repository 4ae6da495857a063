package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

// PartStore is what a store offers sluice batch beyond sluice.Store: the parts of a job
// run through a provider's Batch API (batch.Store holds the same methods). The part
// scenarios run on stores that implement it and are skipped on others.
type PartStore interface {
	sluice.Store
	CreatePart(ctx context.Context, p *sluice.Part, lines []int64) error
	UpdatePart(ctx context.Context, p *sluice.Part) error
	Parts(ctx context.Context, jobID string) ([]*sluice.Part, error)
	Pending(ctx context.Context, jobID string, after int64, limit int, fn func(*sluice.Item) error) error
	PartItems(ctx context.Context, jobID string, number int, fn func(*sluice.Item) error) error
	CompletePart(ctx context.Context, jobID string, number int, outcomes []sluice.Outcome) error
}

var partScenarios = []scenario{
	{"CreatePartHoldsLines", parts(testCreatePartHoldsLines)},
	{"CreatePartNeedsPendingLines", parts(testCreatePartNeedsPendingLines)},
	{"ClaimNeverTakesPartLines", parts(testClaimNeverTakesPartLines)},
	{"PendingPages", parts(testPendingPages)},
	{"PartItemsInLineOrder", parts(testPartItemsInLineOrder)},
	{"CompletePartAddsUsageOnce", parts(testCompletePartAddsUsageOnce)},
	{"UpdatePartSavesProviderFields", parts(testUpdatePartSavesProviderFields)},
	{"PartsOfUnknownJob", parts(testPartsOfUnknownJob)},
}

// parts adapts a part scenario: it is skipped on a store without parts.
func parts(run func(t *testing.T, st PartStore)) func(t *testing.T, st sluice.Store) {
	return func(t *testing.T, st sluice.Store) {
		ps, ok := st.(PartStore)
		if !ok {
			t.Skipf("%T does not implement storetest.PartStore", st)
		}
		run(t, ps)
	}
}

// partJob creates job-p holding lines 1 to n.
func partJob(t *testing.T, st PartStore, n int64) {
	t.Helper()
	newJob(t, st, "job-p")
	for from := int64(1); from <= n; from += 1000 {
		add(t, st, "job-p", requests(from, min(from+999, n)))
	}
}

// newPart creates a part of job-p holding lines.
func newPart(t *testing.T, st PartStore, lines ...int64) *sluice.Part {
	t.Helper()
	p := &sluice.Part{JobID: "job-p", Round: 1, Endpoint: sluice.EndpointChatCompletions, Model: "gpt-test",
		Requests: int64(len(lines)), Bytes: 100 * int64(len(lines))}
	if err := st.CreatePart(t.Context(), p, lines); err != nil {
		t.Fatalf("create part of lines %v: %v", clip(lines), err)
	}
	return p
}

func getParts(t *testing.T, st PartStore) []*sluice.Part {
	t.Helper()
	ps, err := st.Parts(t.Context(), "job-p")
	if err != nil {
		t.Fatalf("parts: %v", err)
	}
	return ps
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

// partLines returns the lines part number of job-p holds.
func partLines(t *testing.T, st PartStore, number int) []int64 {
	t.Helper()
	return lines(collect(t, func(fn func(*sluice.Item) error) error {
		return st.PartItems(t.Context(), "job-p", number, fn)
	}))
}

// pendingLines returns the lines Pending gives for job-p.
func pendingLines(t *testing.T, st PartStore, after int64, limit int) []int64 {
	t.Helper()
	return lines(collect(t, func(fn func(*sluice.Item) error) error {
		return st.Pending(t.Context(), "job-p", after, limit, fn)
	}))
}

// clip shortens lines for a message.
func clip(lines []int64) []int64 { return lines[:min(len(lines), 8)] }

func testCreatePartHoldsLines(t *testing.T, st PartStore) {
	partJob(t, st, 10)
	before := time.Now().Add(-time.Millisecond)
	holds := [][]int64{{3, 1, 2}, {5}, {8, 7}}
	for i, ls := range holds {
		p := newPart(t, st, ls...)
		if p.Number != i+1 {
			t.Errorf("part %d numbered %d", i+1, p.Number)
		}
		if p.CreatedAt.Before(before) || !p.UpdatedAt.Equal(p.CreatedAt) {
			t.Errorf("part %d: created %v, updated %v; want now, twice", p.Number, p.CreatedAt, p.UpdatedAt)
		}
	}
	for i, want := range [][]int64{{1, 2, 3}, {5}, {7, 8}} {
		if got := partLines(t, st, i+1); !slices.Equal(got, want) {
			t.Errorf("part %d holds %v, want %v", i+1, got, want)
		}
	}
	if got, want := countsOf(stats(t, st, "job-p")), (counts{Total: 10, Pending: 4, InFlight: 6}); got != want {
		t.Errorf("counts %+v, want %+v: a part's lines are in flight", got, want)
	}
	// A part created with its times set keeps them.
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := &sluice.Part{JobID: "job-p", CreatedAt: at, UpdatedAt: at.Add(time.Second)}
	if err := st.CreatePart(t.Context(), p, []int64{9}); err != nil {
		t.Fatal(err)
	}
	ps := getParts(t, st)
	if got := ps[len(ps)-1]; p.Number != 4 || !got.CreatedAt.Equal(at) || !got.UpdatedAt.Equal(at.Add(time.Second)) {
		t.Errorf("part %d created %v, updated %v; want part 4 created %v, updated a second later",
			got.Number, got.CreatedAt, got.UpdatedAt, at)
	}
}

func testCreatePartNeedsPendingLines(t *testing.T, st PartStore) {
	partJob(t, st, 10)
	newPart(t, st, 1)
	// Line 2 is claimed by a worker, line 3 done.
	claim(t, st, "job-p", "w", 2, longLease)
	complete(t, st, "job-p", "w", sluice.Outcome{Line: 3, State: sluice.StateDone, Attempts: 1, StatusCode: 200})
	for _, tc := range []struct {
		name  string
		lines []int64
	}{
		{"held by a part", []int64{4, 1}},
		{"claimed by a worker", []int64{2, 4, 5}},
		{"final", []int64{4, 3}},
		{"not in the ledger", []int64{4, 11}},
		{"listed twice", []int64{4, 5, 4}},
		{"line 0", []int64{4, 0}},
	} {
		p := &sluice.Part{JobID: "job-p", Round: 1}
		if err := st.CreatePart(t.Context(), p, tc.lines); err == nil {
			t.Errorf("%s: CreatePart of lines %v succeeded", tc.name, tc.lines)
		}
		if p.Number != 0 || !p.CreatedAt.IsZero() {
			t.Errorf("%s: a failed CreatePart set the part's number %d, created %v", tc.name, p.Number, p.CreatedAt)
		}
		if ps := getParts(t, st); len(ps) != 1 {
			t.Errorf("%s: %d parts, want only the first", tc.name, len(ps))
		}
		if got := pendingLines(t, st, 0, 0); !slices.Equal(got, []int64{4, 5, 6, 7, 8, 9, 10}) {
			t.Errorf("%s: pending %v, want [4 … 10]: a failed CreatePart holds nothing", tc.name, got)
		}
	}
	// The failures used no number.
	if p := newPart(t, st, 4); p.Number != 2 {
		t.Errorf("the part after failures numbered %d, want 2", p.Number)
	}
}

func testClaimNeverTakesPartLines(t *testing.T, st PartStore) {
	partJob(t, st, 10)
	newPart(t, st, 2, 4, 6, 8)
	want := []int64{1, 3, 5, 7, 9, 10}
	now := time.Now()
	if got := claimLinesAt(t, st, "job-p", "w", 20, tinyLease, now); !slices.Equal(got, want) {
		t.Errorf("claim of pending lines took %v, want %v", got, want)
	}
	if got := claimLinesAt(t, st, "job-p", "w", 20, longLease, now.Add(expiry)); !slices.Equal(got, want) {
		t.Errorf("claim of expired leases took %v, want %v: a part's lease never expires", got, want)
	}
	release(t, st, "job-p", "w")
	if got := partLines(t, st, 1); !slices.Equal(got, []int64{2, 4, 6, 8}) {
		t.Errorf("part 1 holds %v after the workers' claims, want [2 4 6 8]", got)
	}
}

func testPendingPages(t *testing.T, st PartStore) {
	partJob(t, st, 1300)
	newPart(t, st, 2, 3, 700)
	// Line 1 is released after two attempts, one answered 429; line 4 is claimed.
	claim(t, st, "job-p", "w", 2, longLease)
	complete(t, st, "job-p", "w", sluice.Outcome{Line: 1, State: sluice.StatePending, Attempts: 2, Throttled: 1})
	items := collect(t, func(fn func(*sluice.Item) error) error { return st.Pending(t.Context(), "job-p", 0, 3, fn) })
	first := item(1, 2)
	first.Throttled = 1
	if diff := cmp.Diff([]sluice.Item{first, item(5, 0), item(6, 0)}, items); diff != "" {
		t.Errorf("Pending(after 0, limit 3) (-want +got):\n%s", diff)
	}
	var all []int64 // 1, 5 to 1300 but 700: more than two pages of any reasonable size
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
		{1300, 0, []int64{}},
	} {
		if got := pendingLines(t, st, tc.after, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("Pending(after %d, limit %d): %d lines %v, want %d", tc.after, tc.limit, len(got), clip(got), len(tc.want))
		}
	}
	// fn's error stops it, and is returned as it is.
	stop := errors.New("stop")
	var seen int
	err := st.Pending(t.Context(), "job-p", 0, 0, func(*sluice.Item) error {
		if seen++; seen == 600 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 600 {
		t.Errorf("Pending with fn failing at the 600th: %v after %d, want its error after 600", err, seen)
	}
}

func testPartItemsInLineOrder(t *testing.T, st PartStore) {
	partJob(t, st, 1200)
	var odd, even []int64
	for line := int64(1); line <= 1200; line++ {
		if line%2 == 1 {
			odd = append(odd, line)
		} else if line > 10 {
			even = append(even, line)
		}
	}
	newPart(t, st, odd...)
	slices.Reverse(even)
	newPart(t, st, even...)
	// A worker's leases are not a part's, even under an owner named like one.
	if got := claimLines(t, st, "job-p", "part-1", 2, longLease); !slices.Equal(got, []int64{2, 4}) {
		t.Fatalf("claimed %v, want [2 4]", got)
	}
	if got := partLines(t, st, 1); !slices.Equal(got, odd) {
		t.Errorf("part 1 holds %d lines %v, want the %d odd ones", len(got), clip(got), len(odd))
	}
	if got := partLines(t, st, 2); len(got) != len(even) || got[0] != 12 || !slices.IsSorted(got) {
		t.Errorf("part 2 holds %d lines %v, want the %d even ones from 12, in order", len(got), clip(got), len(even))
	}
	if got := partLines(t, st, 3); len(got) != 0 {
		t.Errorf("part 3, not created, holds %v", got)
	}
	items := collect(t, func(fn func(*sluice.Item) error) error { return st.PartItems(t.Context(), "job-p", 1, fn) })
	if diff := cmp.Diff(item(1, 0), items[0]); diff != "" {
		t.Errorf("first item of part 1 (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	if err := st.PartItems(t.Context(), "job-p", 1, func(*sluice.Item) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("PartItems with fn failing: %v, want its error", err)
	}
}

func testCompletePartAddsUsageOnce(t *testing.T, st PartStore) {
	partJob(t, st, 6)
	newPart(t, st, 1, 2, 3, 4)
	newPart(t, st, 5, 6)
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
		if err := st.CompletePart(t.Context(), "job-p", 1, outcomes); err != nil {
			t.Fatal(err)
		}
		ps := getParts(t, st)
		if diff := cmp.Diff([]sluice.Usage{wantUsage, {}}, []sluice.Usage{ps[0].Usage, ps[1].Usage}); diff != "" {
			t.Errorf("%s: usage of parts 1 and 2 (-want +got):\n%s", round, diff)
		}
	}
	if got := resultLines(results(t, st, "job-p", 0, 0)); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("final lines %v, want [1 2 3]", got)
	}
	released := item(4, 2)
	released.Throttled = 1
	if diff := cmp.Diff([]sluice.Item{released}, collect(t, func(fn func(*sluice.Item) error) error {
		return st.Pending(t.Context(), "job-p", 0, 0, fn)
	})); diff != "" {
		t.Errorf("pending after CompletePart (-want +got):\n%s", diff)
	}
	if got := partLines(t, st, 2); !slices.Equal(got, []int64{5, 6}) {
		t.Errorf("part 2 holds %v, want [5 6]", got)
	}
	if err := st.CompletePart(t.Context(), "job-p", 3, outcomes[:1]); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("CompletePart of a part not created: %v, want ErrNotFound", err)
	}
	bad := []sluice.Outcome{{Line: 5, State: sluice.StateDone, Usage: sluice.Usage{PromptTokens: 1}}, {Line: 6, State: "lost"}}
	if err := st.CompletePart(t.Context(), "job-p", 2, bad); err == nil {
		t.Error("an outcome with an unknown state was accepted")
	}
	if got := partLines(t, st, 2); !slices.Equal(got, []int64{5, 6}) {
		t.Errorf("part 2 holds %v after a failed CompletePart, want [5 6]", got)
	}
}

func testUpdatePartSavesProviderFields(t *testing.T, st PartStore) {
	partJob(t, st, 3)
	newPart(t, st, 1)
	p := newPart(t, st, 2, 3)
	if err := st.CompletePart(t.Context(), "job-p", 2, []sluice.Outcome{
		{Line: 2, State: sluice.StateDone, Usage: sluice.Usage{PromptTokens: 4, CompletionTokens: 5, CachedTokens: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	created := p.CreatedAt
	want := *p
	want.Usage = sluice.Usage{PromptTokens: 4, CompletionTokens: 5, CachedTokens: 1}
	// Every field changes; only those UpdatePart saves are kept.
	*p = sluice.Part{
		JobID: "job-p", Number: 2, Round: 9, Endpoint: sluice.EndpointEmbeddings, Model: "other", Requests: 99, Bytes: 999,
		FileID: "file-1", BatchID: "batch_1", Status: sluice.BatchCompleted,
		Counts:       sluice.RequestCounts{Total: 2, Completed: 1, Failed: 1},
		OutputFileID: "file-out", ErrorFileID: "file-err", Error: "line 2: too long", Collected: true,
		Usage:     sluice.Usage{PromptTokens: 1000},
		CreatedAt: created.Add(-time.Hour), UpdatedAt: created.Add(-time.Hour),
	}
	if err := st.UpdatePart(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if p.UpdatedAt.Before(created) {
		t.Errorf("UpdatedAt %v, want now, after its creation %v", p.UpdatedAt, created)
	}
	want.FileID, want.BatchID, want.Status, want.Counts = p.FileID, p.BatchID, p.Status, p.Counts
	want.OutputFileID, want.ErrorFileID, want.Error, want.Collected = p.OutputFileID, p.ErrorFileID, p.Error, p.Collected
	want.UpdatedAt = p.UpdatedAt
	ps := getParts(t, st)
	if diff := cmp.Diff(&want, ps[1]); diff != "" {
		t.Errorf("part after UpdatePart (-want +got):\n%s", diff)
	}
	if ps[0].FileID != "" || ps[0].Collected {
		t.Errorf("UpdatePart of part 2 changed part 1: %+v", ps[0])
	}
	if err := st.UpdatePart(t.Context(), &sluice.Part{JobID: "job-p", Number: 3}); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("UpdatePart of a part not created: %v, want ErrNotFound", err)
	}
}

func testPartsOfUnknownJob(t *testing.T, st PartStore) {
	partJob(t, st, 1)
	if ps := getParts(t, st); ps == nil || len(ps) != 0 {
		t.Errorf("Parts of a job without parts: %v, want an empty slice", ps)
	}
	ctx := t.Context()
	_, partsErr := st.Parts(ctx, "nope")
	none := func(*sluice.Item) error { return nil }
	for name, err := range map[string]error{
		"CreatePart":   st.CreatePart(ctx, &sluice.Part{JobID: "nope"}, nil),
		"UpdatePart":   st.UpdatePart(ctx, &sluice.Part{JobID: "nope", Number: 1}),
		"Parts":        partsErr,
		"Pending":      st.Pending(ctx, "nope", 0, 0, none),
		"PartItems":    st.PartItems(ctx, "nope", 1, none),
		"CompletePart": st.CompletePart(ctx, "nope", 1, []sluice.Outcome{{Line: 1, State: sluice.StateDone}}),
	} {
		if !errors.Is(err, sluice.ErrNotFound) {
			t.Errorf("%s of an unknown job: %v, want ErrNotFound", name, err)
		}
	}
}
