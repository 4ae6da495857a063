package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

var timelineScenarios = []scenario{
	{"TimelineMergesBucketsAndTotals", timeline(testTimelineMerges)},
	{"TimelineSinceAndIsolation", timeline(testTimelineSince)},
	{"JobCountsWithoutTimeline", timeline(testJobCountsWithoutTimeline)},
	{"FailuresInLineOrderByCode", timeline(testFailures)},
	{"InputOfALine", timeline(testInput)},
	{"FinishedRequestsForALedgerTimeline", timeline(testFinished)},
	{"DeleteJobTakesItsTimeline", timeline(testDeleteTakesTimeline)},
}

// timeline runs a scenario of sluice.TimelineStore, skipped on stores without it.
func timeline(run func(t *testing.T, st sluice.Store, ts sluice.TimelineStore)) func(t *testing.T, st sluice.Store) {
	return func(t *testing.T, st sluice.Store) {
		ts, ok := st.(sluice.TimelineStore)
		if !ok {
			t.Skipf("%T does not implement sluice.TimelineStore", st)
		}
		run(t, st, ts)
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func appendTimeline(t *testing.T, ts sluice.TimelineStore, jobID string, bs ...sluice.TimelineBucket) {
	t.Helper()
	if err := ts.AppendTimeline(t.Context(), jobID, bs); err != nil {
		t.Fatalf("append timeline: %v", err)
	}
}

func readTimeline(t *testing.T, ts sluice.TimelineStore, jobID string, since time.Time) []sluice.TimelineBucket {
	t.Helper()
	bs, err := ts.Timeline(t.Context(), jobID, since)
	if err != nil {
		t.Fatalf("timeline: %v", err)
	}
	return bs
}

func jobCounts(t *testing.T, ts sluice.TimelineStore, jobID string) *sluice.JobCounts {
	t.Helper()
	c, err := ts.JobCounts(t.Context(), jobID)
	if err != nil {
		t.Fatalf("job counts: %v", err)
	}
	return c
}

// testTimelineMerges: two writers' buckets for the same second add up, the later sample
// wins, and the totals sum every bucket.
func testTimelineMerges(t *testing.T, st sluice.Store, ts sluice.TimelineStore) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 7))
	first := sluice.TimelineBucket{Start: t0, Width: time.Second, Completed: 3, Throttled: 1,
		Errors: map[string]int64{"429": 1}, Usage: sluice.Usage{PromptTokens: 30, CompletionTokens: 15}, Cost: 0.5,
		Latency: sluice.Histogram{}.Add(100 * time.Millisecond).Add(200 * time.Millisecond),
		Sample:  &sluice.RunSample{At: t0.Add(time.Second), Total: 7, Done: 3, InFlight: 2, RPM: 600, Learned: true}}
	other := sluice.TimelineBucket{Start: t0, Width: time.Second, Completed: 1, Failed: 1,
		Errors: map[string]int64{"429": 2, "400": 1}, Usage: sluice.Usage{PromptTokens: 10}, Cost: 0.25,
		Latency: sluice.Histogram{}.Add(time.Second),
		Sample:  &sluice.RunSample{At: t0.Add(900 * time.Millisecond), Total: 7, Done: 1}}
	next := sluice.TimelineBucket{Start: t0.Add(time.Second), Width: time.Second, Completed: 2, Cost: 0.25,
		Sample: &sluice.RunSample{At: t0.Add(2 * time.Second), Total: 7, Done: 6, Failed: 1, BreakerOpen: true}}
	appendTimeline(t, ts, "job-a", first)
	appendTimeline(t, ts, "job-a", other, next)

	got := readTimeline(t, ts, "job-a", time.Time{})
	if len(got) != 2 {
		t.Fatalf("timeline has %d buckets, want 2: %+v", len(got), got)
	}
	want0 := sluice.TimelineBucket{Start: t0, Width: time.Second, Completed: 4, Failed: 1, Throttled: 1,
		Errors: map[string]int64{"429": 3, "400": 1}, Usage: sluice.Usage{PromptTokens: 40, CompletionTokens: 15}, Cost: 0.75,
		Latency: sluice.Histogram{}.Add(100 * time.Millisecond).Add(200 * time.Millisecond).Add(time.Second),
		Sample:  first.Sample}
	if diff := cmp.Diff(want0, got[0]); diff != "" {
		t.Errorf("merged bucket (-want +got):\n%s", diff)
	}
	if !got[1].Start.Equal(next.Start) || got[1].Completed != 2 || got[1].Sample == nil || !got[1].Sample.BreakerOpen {
		t.Errorf("second bucket = %+v, want %+v", got[1], next)
	}

	c := jobCounts(t, ts, "job-a")
	if !c.HasTimeline || c.Total != 7 || c.JobID != "job-a" {
		t.Errorf("counts = %+v, want a timeline and 7 lines", c)
	}
	tot := c.Totals
	if tot.Completed != 6 || tot.Failed != 1 || tot.Throttled != 1 || tot.Errors["429"] != 3 || tot.Cost != 1 ||
		tot.Usage.PromptTokens != 40 || tot.Latency.Count() != 3 {
		t.Errorf("totals = %+v", tot)
	}
	if tot.Sample == nil || tot.Sample.Done != 6 || tot.Sample.Failed != 1 || !tot.Sample.BreakerOpen {
		t.Errorf("totals' sample = %+v, want the latest (6 done, 1 failed, breaker open)", tot.Sample)
	}
}

// testTimelineSince: since selects by start; one job's timeline is not another's.
func testTimelineSince(t *testing.T, st sluice.Store, ts sluice.TimelineStore) {
	newJob(t, st, "job-a")
	newJob(t, st, "job-b")
	for i := range 5 {
		appendTimeline(t, ts, "job-a", sluice.TimelineBucket{Start: t0.Add(time.Duration(i) * time.Second), Width: time.Second, Completed: int64(i + 1)})
	}
	appendTimeline(t, ts, "job-b", sluice.TimelineBucket{Start: t0, Width: time.Second, Completed: 100})
	got := readTimeline(t, ts, "job-a", t0.Add(3*time.Second))
	var completed []int64
	for _, b := range got {
		completed = append(completed, b.Completed)
	}
	if !cmp.Equal(completed, []int64{4, 5}) {
		t.Errorf("buckets since t0+3s completed %v, want [4 5]", completed)
	}
	if n := len(readTimeline(t, ts, "job-b", time.Time{})); n != 1 {
		t.Errorf("job-b has %d buckets, want 1", n)
	}
	if c := jobCounts(t, ts, "job-a"); c.Totals.Completed != 15 {
		t.Errorf("job-a's total completed = %d, want 15", c.Totals.Completed)
	}
	if _, err := ts.Timeline(t.Context(), "nope", time.Time{}); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("timeline of an unknown job: %v, want ErrNotFound", err)
	}
	if err := ts.AppendTimeline(t.Context(), "nope", []sluice.TimelineBucket{{Start: t0}}); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("appending to an unknown job: %v, want ErrNotFound", err)
	}
}

// testJobCountsWithoutTimeline: a job no run wrote a timeline for has its line count only.
func testJobCountsWithoutTimeline(t *testing.T, st sluice.Store, ts sluice.TimelineStore) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 4))
	c := jobCounts(t, ts, "job-a")
	if c.HasTimeline || c.Total != 4 || c.Totals.Completed != 0 || c.Totals.Sample != nil {
		t.Errorf("counts = %+v, want 4 lines and no timeline", c)
	}
	if _, err := ts.JobCounts(t.Context(), "nope"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("counts of an unknown job: %v, want ErrNotFound", err)
	}
}

// testFailures: failed requests only, in line order, after a line, by status or error code.
func testFailures(t *testing.T, st sluice.Store, ts sluice.TimelineStore) {
	newJob(t, st, "job-a")
	newJob(t, st, "job-b")
	add(t, st, "job-a", requests(1, 6))
	add(t, st, "job-b", requests(1, 2))
	claim(t, st, "job-a", "w", 10, longLease)
	claim(t, st, "job-b", "w", 10, longLease)
	failed := func(n int64, status int, code string) sluice.Outcome {
		return sluice.Outcome{Line: n, State: sluice.StateFailed, Attempts: 1, StatusCode: status,
			ErrorCode: code, ErrorMessage: "bad " + code, FinishedAt: time.Now()}
	}
	complete(t, st, "job-a", "w", done(1, 1, time.Millisecond), failed(2, 400, "invalid_request_error"),
		failed(3, 0, "timeout"), done(4, 1, time.Millisecond), failed(5, 400, "invalid_request_error"))
	complete(t, st, "job-b", "w", failed(1, 500, "server_error"))
	lines := func(after int64, code string, limit int) []int64 {
		t.Helper()
		res, err := ts.Failures(t.Context(), "job-a", after, code, limit)
		if err != nil {
			t.Fatalf("failures: %v", err)
		}
		ls := []int64{}
		for _, r := range res {
			if r.State != sluice.StateFailed {
				t.Errorf("line %d in failures is %s", r.Line, r.State)
			}
			ls = append(ls, r.Line)
		}
		return ls
	}
	for _, tc := range []struct {
		name  string
		after int64
		code  string
		limit int
		want  []int64
	}{
		{"all", 0, "", 0, []int64{2, 3, 5}},
		{"after a line", 2, "", 0, []int64{3, 5}},
		{"limited", 0, "", 2, []int64{2, 3}},
		{"by status", 0, "400", 0, []int64{2, 5}},
		{"by error code", 0, "timeout", 0, []int64{3}},
		{"by an unknown code", 0, "503", 0, []int64{}},
	} {
		if got := lines(tc.after, tc.code, tc.limit); !cmp.Equal(got, tc.want) {
			t.Errorf("%s: failures %v, want %v", tc.name, got, tc.want)
		}
	}
	res, err := ts.Failures(t.Context(), "job-a", 2, "timeout", 1)
	if err != nil || len(res) != 1 {
		t.Fatalf("failures: %v, %v", res, err)
	}
	if r := res[0]; r.CustomID != "req-3" || r.ErrorCode != "timeout" || r.ErrorMessage != "bad timeout" {
		t.Errorf("failure = %+v", r)
	}
}

// testInput: the request of a line as ingested.
func testInput(t *testing.T, st sluice.Store, ts sluice.TimelineStore) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 3))
	got, err := ts.Input(t.Context(), "job-a", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := request(2).Request
	if got.CustomID != want.CustomID || got.Method != want.Method || got.URL != want.URL || string(got.Body) != string(want.Body) {
		t.Errorf("input of line 2 = %+v, want %+v", got, want)
	}
	for _, line := range []int64{0, 4} {
		if _, err := ts.Input(t.Context(), "job-a", line); !errors.Is(err, sluice.ErrNotFound) {
			t.Errorf("input of line %d: %v, want ErrNotFound", line, err)
		}
	}
}

// testDeleteTakesTimeline: a deleted job's timeline goes with it; a new job of the same id
// starts with none.
func testDeleteTakesTimeline(t *testing.T, st sluice.Store, ts sluice.TimelineStore) {
	ds, ok := st.(interface {
		DeleteJob(ctx context.Context, id string) error
	})
	if !ok {
		t.Skipf("%T does not delete jobs", st)
	}
	newJob(t, st, "job-a")
	appendTimeline(t, ts, "job-a", sluice.TimelineBucket{Start: t0, Width: time.Second, Completed: 3})
	if err := ds.DeleteJob(t.Context(), "job-a"); err != nil {
		t.Fatal(err)
	}
	newJob(t, st, "job-a")
	if bs := readTimeline(t, ts, "job-a", time.Time{}); len(bs) != 0 {
		t.Errorf("the new job-a has %d buckets, want none", len(bs))
	}
	if c := jobCounts(t, ts, "job-a"); c.HasTimeline {
		t.Errorf("the new job-a has a timeline: %+v", c)
	}
}

// testFinished: every final request with a finish time, in line order, with what a
// timeline needs; those not final are left out.
func testFinished(t *testing.T, st sluice.Store, ts sluice.TimelineStore) {
	newJob(t, st, "job-a")
	newJob(t, st, "job-b")
	add(t, st, "job-a", requests(1, 4))
	add(t, st, "job-b", requests(1, 1))
	claim(t, st, "job-a", "w", 10, longLease)
	claim(t, st, "job-b", "w", 10, longLease)
	at := t0.Add(time.Minute)
	ok := done(1, 2, 300*time.Millisecond)
	ok.FinishedAt, ok.Throttled = at, 1
	bad := sluice.Outcome{Line: 3, State: sluice.StateFailed, Attempts: 1, StatusCode: 400, ErrorCode: "invalid_request_error",
		Latency: 50 * time.Millisecond, FinishedAt: at.Add(time.Second)}
	complete(t, st, "job-a", "w", ok, bad) // lines 2 and 4 stay in flight
	other := done(1, 1, time.Millisecond)
	other.FinishedAt = at
	complete(t, st, "job-b", "w", other)
	var got []sluice.Finished
	if err := ts.Finished(t.Context(), "job-a", func(f *sluice.Finished) error {
		got = append(got, *f)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []sluice.Finished{
		{Line: 1, At: at, State: sluice.StateDone, Attempts: 2, Throttled: 1, StatusCode: 200, Latency: 300 * time.Millisecond,
			Model: "gpt-test", Usage: sluice.Usage{PromptTokens: 10, CompletionTokens: 5}},
		{Line: 3, At: at.Add(time.Second), State: sluice.StateFailed, Attempts: 1, StatusCode: 400,
			ErrorCode: "invalid_request_error", Latency: 50 * time.Millisecond, Model: "gpt-test"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("finished requests (-want +got):\n%s", diff)
	}
}
