package storetest

import (
	"errors"
	"testing"

	"github.com/sluice-llm/sluice"
)

var unfinishedScenarios = []scenario{
	{"UnfinishedFollowsStats", testUnfinishedFollowsStats},
}

// testUnfinishedFollowsStats walks a job through its states, with another job's pending
// lines beside it, and checks at each step that Unfinished says what Stats does.
func testUnfinishedFollowsStats(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	newJob(t, st, "job-b")
	add(t, st, "job-b", requests(1, 3))
	check := func(step string, pending, inFlight bool) {
		t.Helper()
		p, f, err := st.Unfinished(t.Context(), "job-a")
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		s := stats(t, st, "job-a")
		if p != pending || f != inFlight || p != (s.Pending > 0) || f != (s.InFlight > 0) {
			t.Errorf("%s: Unfinished = %v, %v; want %v, %v (Stats: %d pending, %d in flight)",
				step, p, f, pending, inFlight, s.Pending, s.InFlight)
		}
	}
	check("empty job", false, false)
	reqs := requests(1, 4)
	reqs[3].Err = &sluice.LineError{Line: 4, Msg: "not JSON"} // failed at once
	add(t, st, "job-a", reqs)
	check("lines added", true, false)
	claim(t, st, "job-a", "w1", 1, longLease)
	check("one claimed", true, true)
	claim(t, st, "job-a", "w1", 10, longLease)
	check("all claimed", false, true)
	complete(t, st, "job-a", "w1", done(1, 1, 0), sluice.Outcome{Line: 2, State: sluice.StatePending, Attempts: 0})
	check("one done, one released", true, true)
	complete(t, st, "job-a", "w1", sluice.Outcome{Line: 3, State: sluice.StateFailed, Attempts: 1, StatusCode: 400})
	claim(t, st, "job-a", "w2", 10, longLease)
	check("the released one claimed again", false, true)
	complete(t, st, "job-a", "w2", done(2, 1, 0))
	check("all final", false, false)
	if _, _, err := st.Unfinished(t.Context(), "job-missing"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("Unfinished of a missing job: %v, want an error wrapping ErrNotFound", err)
	}
}
