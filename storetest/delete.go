package storetest

import (
	"errors"
	"testing"

	"github.com/sluice-llm/sluice"
)

// DeleteStore deletes jobs (sluice jobs rm). The delete scenarios run on stores that
// implement it and are skipped on others.
type DeleteStore = sluice.JobDeleter

var deleteScenarios = []scenario{
	{"DeleteJobLeavesNothing", testDeleteJobLeavesNothing},
}

func testDeleteJobLeavesNothing(t *testing.T, st sluice.Store) {
	ds, ok := st.(DeleteStore)
	if !ok {
		t.Skipf("%T does not implement storetest.DeleteStore", st)
	}
	ctx := t.Context()
	newJob(t, st, "job-a")
	newJob(t, st, "job-b")
	add(t, st, "job-a", requests(1, 6))
	add(t, st, "job-b", requests(1, 3))
	claim(t, st, "job-a", "w1", 2, longLease)
	complete(t, st, "job-a", "w1", done(1, 1, 0))
	if ps, ok := st.(PartStore); ok {
		p := &sluice.Part{JobID: "job-a", Round: 1}
		if err := ps.CreatePart(ctx, p, []int64{5, 6}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ds.DeleteJob(ctx, "job-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Job(ctx, "job-a"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("job-a after its deletion: %v, want ErrNotFound", err)
	}
	if err := ds.DeleteJob(ctx, "job-a"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("deleting job-a again: %v, want ErrNotFound", err)
	}
	jobs, err := st.Jobs(ctx, "")
	if err != nil || len(jobs) != 1 || jobs[0].ID != "job-b" {
		t.Errorf("jobs after deleting job-a: %v, %v; want job-b only", jobs, err)
	}
	if got, want := countsOf(stats(t, st, "job-b")), (counts{Total: 3, Pending: 3}); got != want {
		t.Errorf("job-b after deleting job-a: %+v, want %+v", got, want)
	}
	// A new job under the deleted one's id starts empty: no line, custom_id or part of
	// the old one is left to meet it.
	newJob(t, st, "job-a")
	if got, want := countsOf(stats(t, st, "job-a")), (counts{}); got != want {
		t.Errorf("the new job-a: %+v, want empty", got)
	}
	add(t, st, "job-a", requests(1, 3))
	if got := claimLines(t, st, "job-a", "w2", 10, longLease); len(got) != 3 {
		t.Errorf("the new job-a's claim took %v, want [1 2 3]", got)
	}
	if got := results(t, st, "job-a", 0, 0); len(got) != 0 {
		t.Errorf("the new job-a has results for lines %v", resultLines(got))
	}
	if ps, ok := st.(PartStore); ok {
		parts, err := ps.Parts(ctx, "job-a")
		if err != nil || len(parts) != 0 {
			t.Errorf("the new job-a has parts %v, %v", parts, err)
		}
	}
}
