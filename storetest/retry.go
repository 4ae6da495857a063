package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

var retryScenarios = []scenario{
	{"RetryFailedTouchesNoDoneRequest", testRetryFailed},
}

// testRetryFailed: a finished job's failed requests go back to pending with no attempts
// spent; done requests and lines never sent keep their results. Stores that do not
// implement sluice.FailedRetrier skip it.
func testRetryFailed(t *testing.T, st sluice.Store) {
	rf, ok := st.(sluice.FailedRetrier)
	if !ok {
		t.Skip("the store does not implement sluice.FailedRetrier")
	}
	newJob(t, st, "job-a")
	newJob(t, st, "job-b")
	invalid := sluice.NewRequest{Line: 5, Err: &sluice.LineError{Line: 5, Field: "url", Msg: "missing"}}
	dup := request(6)
	dup.Request.CustomID = "req-1"
	add(t, st, "job-a", append(requests(1, 4), invalid, dup))
	add(t, st, "job-b", requests(1, 2))
	if got := claimLines(t, st, "job-a", "w", 10, longLease); !cmp.Equal(got, []int64{1, 2, 3, 4}) {
		t.Fatalf("claimed %v", got)
	}
	failed := func(n int64, status int) sluice.Outcome {
		return sluice.Outcome{Line: n, State: sluice.StateFailed, Attempts: 3, Throttled: 2, StatusCode: status,
			ErrorCode: "server_error", ErrorMessage: "upstream down", FinishedAt: time.Now()}
	}
	complete(t, st, "job-a", "w", done(1, 1, time.Millisecond), failed(2, 503), failed(3, 429), done(4, 2, time.Millisecond))
	claimLines(t, st, "job-b", "w", 10, longLease)
	complete(t, st, "job-b", "w", failed(1, 500), failed(2, 500))
	job := getJob(t, st, "job-a")
	job.State = sluice.JobCompleted
	if err := st.UpdateJob(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	before := results(t, st, "job-a", 0, 100)

	n, err := rf.RetryFailed(t.Context(), "job-a")
	if err != nil || n != 2 {
		t.Fatalf("RetryFailed = %d, %v; want 2", n, err)
	}
	if got := getJob(t, st, "job-a"); got.State != sluice.JobRunning || got.Error != "" {
		t.Errorf("job after RetryFailed: state %s, error %q; want running", got.State, got.Error)
	}
	if got, want := countsOf(stats(t, st, "job-a")), (counts{Total: 6, Pending: 2, Done: 2, Failed: 2}); got != want {
		t.Errorf("counts after RetryFailed = %+v, want %+v", got, want)
	}
	if got, want := countsOf(stats(t, st, "job-b")), (counts{Total: 2, Failed: 2}); got != want {
		t.Errorf("another job's counts = %+v, want %+v", got, want)
	}
	after := results(t, st, "job-a", 0, 100)
	if diff := cmp.Diff([]sluice.Result{before[0], before[3], before[4], before[5]}, after); diff != "" {
		t.Errorf("final results after RetryFailed (-want +got):\n%s", diff)
	}
	items := claim(t, st, "job-a", "w2", 10, longLease)
	if diff := cmp.Diff([]sluice.Item{item(2, 0), item(3, 0)}, items); diff != "" {
		t.Errorf("claim after RetryFailed (-want +got):\n%s", diff)
	}
	complete(t, st, "job-a", "w2", done(2, 1, time.Millisecond), done(3, 1, time.Millisecond))
	if n, err := rf.RetryFailed(t.Context(), "job-a"); err != nil || n != 0 {
		t.Errorf("RetryFailed with only never-sent lines failed = %d, %v; want 0", n, err)
	}
}
