package storetest

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

var ingestScenarios = []scenario{
	{"AddRequestsAdvancesIngested", testAddRequestsAdvancesIngested},
	{"AddRequestsIsIdempotent", testAddRequestsIsIdempotent},
	{"DuplicateCustomIDFails", testDuplicateCustomIDFails},
	{"InvalidLineStoredFailed", testInvalidLineStoredFailed},
	{"JobsAreIsolated", testJobsAreIsolated},
}

func testAddRequestsAdvancesIngested(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	for _, step := range []struct {
		from, to, want int64
	}{{1, 5, 5}, {6, 10, 10}, {2, 3, 10}} {
		add(t, st, "job-a", requests(step.from, step.to))
		if got := getJob(t, st, "job-a").Ingested; got != step.want {
			t.Errorf("after adding lines %d-%d, Ingested = %d, want %d", step.from, step.to, got, step.want)
		}
	}
}

func testAddRequestsIsIdempotent(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 5))
	if got := claimLines(t, st, "job-a", "w1", 2, longLease); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("claimed %v, want [1 2]", got)
	}
	complete(t, st, "job-a", "w1", done(1, 1, 0))
	// The ingester restarts from an earlier line: lines present keep their state.
	add(t, st, "job-a", requests(1, 8))
	want := counts{Total: 8, Pending: 6, InFlight: 1, Done: 1}
	if got := countsOf(stats(t, st, "job-a")); got != want {
		t.Errorf("after adding lines again: %+v, want %+v", got, want)
	}
	if got := claimLines(t, st, "job-a", "w2", 10, longLease); !slices.Equal(got, []int64{3, 4, 5, 6, 7, 8}) {
		t.Errorf("claimed %v, want [3 4 5 6 7 8]", got)
	}
	if got := resultLines(results(t, st, "job-a", 0, 0)); !slices.Equal(got, []int64{1}) {
		t.Errorf("results for lines %v, want [1]", got)
	}
	// A line present is skipped even when it reads differently the second time.
	add(t, st, "job-a", []sluice.NewRequest{{Line: 9, Err: &sluice.LineError{Line: 9, Msg: "not JSON"}}})
	again := requests(8, 9)
	again[0].Err = &sluice.LineError{Line: 8, Msg: "not JSON"}
	add(t, st, "job-a", again)
	want = counts{Total: 9, InFlight: 7, Done: 1, Failed: 1}
	if got := countsOf(stats(t, st, "job-a")); got != want {
		t.Errorf("after adding changed lines again: %+v, want %+v", got, want)
	}
}

func testDuplicateCustomIDFails(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	first := requests(1, 4)
	first[2].Request.CustomID = "req-1" // line 3 repeats line 1, in the same batch
	second := requests(5, 6)
	second[0].Request.CustomID = "req-2" // line 5 repeats line 2, in a later batch
	add(t, st, "job-a", first)
	add(t, st, "job-a", second)
	add(t, st, "job-a", first) // again: nothing changes

	res := results(t, st, "job-a", 0, 0)
	if got := resultLines(res); !slices.Equal(got, []int64{3, 5}) {
		t.Fatalf("final lines %v, want the duplicates [3 5]", got)
	}
	for i, dup := range []struct {
		customID string
		first    int64
	}{{"req-1", 1}, {"req-2", 2}} {
		r := res[i]
		want := sluice.Result{Line: r.Line, CustomID: dup.customID, State: sluice.StateFailed,
			ErrorCode: sluice.CodeDuplicateID, ErrorMessage: r.ErrorMessage}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("line %d (-want +got):\n%s", r.Line, diff)
		}
		if names := regexp.MustCompile(fmt.Sprintf(`\bline %d\b`, dup.first)); !names.MatchString(r.ErrorMessage) {
			t.Errorf("line %d: message %q does not name line %d, which has custom_id %q", r.Line, r.ErrorMessage,
				dup.first, dup.customID)
		}
	}
	if got := claimLines(t, st, "job-a", "w1", 10, longLease); !slices.Equal(got, []int64{1, 2, 4, 6}) {
		t.Errorf("claimed %v, want the unique lines [1 2 4 6]", got)
	}
	s := stats(t, st, "job-a")
	if got, want := countsOf(s), (counts{Total: 6, InFlight: 4, Failed: 2}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if diff := cmp.Diff(map[string]int64{sluice.CodeDuplicateID: 2}, s.FailuresByCode); diff != "" {
		t.Errorf("failures by code (-want +got):\n%s", diff)
	}
}

func testInvalidLineStoredFailed(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	reqs := requests(1, 4)
	reqs[1] = sluice.NewRequest{Line: 2, Err: &sluice.LineError{Line: 2, Field: "custom_id", Msg: "missing"}}
	// A line that parsed but failed later keeps its custom_id.
	reqs[2].Err = &sluice.LineError{Line: 3, Field: "body", Msg: "model: missing"}
	add(t, st, "job-a", reqs)

	want := []sluice.Result{
		{Line: 2, State: sluice.StateFailed, ErrorCode: sluice.CodeInvalidRequest, ErrorMessage: "line 2: custom_id: missing"},
		{Line: 3, CustomID: "req-3", State: sluice.StateFailed, ErrorCode: sluice.CodeInvalidRequest,
			ErrorMessage: "line 3: body: model: missing"},
	}
	if diff := cmp.Diff(want, results(t, st, "job-a", 0, 0)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if got := claimLines(t, st, "job-a", "w1", 10, longLease); !slices.Equal(got, []int64{1, 4}) {
		t.Errorf("claimed %v, want the valid lines [1 4]", got)
	}
	if got := getJob(t, st, "job-a").Ingested; got != 4 {
		t.Errorf("Ingested = %d, want 4", got)
	}
}

func testJobsAreIsolated(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	newJob(t, st, "job-b")
	add(t, st, "job-a", requests(1, 3))
	add(t, st, "job-b", requests(1, 4)) // the same custom_ids: not duplicates across jobs
	if diff := cmp.Diff([]sluice.Item{item(1, 0), item(2, 0), item(3, 0)}, claim(t, st, "job-a", "w1", 10, longLease)); diff != "" {
		t.Fatalf("claim of job-a (-want +got):\n%s", diff)
	}
	if got := claimLines(t, st, "job-b", "w1", 1, longLease); !slices.Equal(got, []int64{1}) {
		t.Fatalf("claim of job-b = %v, want [1]", got)
	}
	complete(t, st, "job-a", "w1", done(1, 1, 0), done(2, 1, 0))
	release(t, st, "job-a", "")
	if got, want := countsOf(stats(t, st, "job-b")), (counts{Total: 4, Pending: 3, InFlight: 1}); got != want {
		t.Errorf("job-b after work on job-a: %+v, want %+v", got, want)
	}
	if got := results(t, st, "job-b", 0, 0); len(got) != 0 {
		t.Errorf("job-b has results %v, want none", resultLines(got))
	}
	if got, want := countsOf(stats(t, st, "job-a")), (counts{Total: 3, Pending: 1, Done: 2}); got != want {
		t.Errorf("job-a: %+v, want %+v", got, want)
	}
	if got := getJob(t, st, "job-a").Ingested; got != 3 {
		t.Errorf("job-a Ingested = %d, want 3", got)
	}
}
