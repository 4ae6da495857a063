package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

var leaseScenarios = []scenario{
	{"ClaimInLineOrderUpToLimit", testClaimInLineOrderUpToLimit},
	{"ConcurrentClaimsNeverOverlap", testConcurrentClaimsNeverOverlap},
	{"ExpiredLeaseIsReclaimed", testExpiredLeaseIsReclaimed},
	{"ReclaimKeepsAttempts", testReclaimKeepsAttempts},
	{"CompleteFromNonOwnerIgnored", testCompleteFromNonOwnerIgnored},
	{"CompletePendingReleasesKeepingAttempts", testCompletePendingReleases},
	{"CompleteInFlightKeepsLease", testCompleteInFlightKeepsLease},
	{"CompleteRecordsLastAnswer", testCompleteRecordsLastAnswer},
	{"CompleteSameLineInOrder", testCompleteSameLineInOrder},
	{"RenewSetsOwnLeases", testRenewSetsOwnLeases},
	{"ReleaseOwnerOrAll", testReleaseOwnerOrAll},
	{"ReclaimAfterReleaseCountsRepaid", testReclaimAfterReleaseCountsRepaid},
}

func testClaimInLineOrderUpToLimit(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(6, 10)) // added out of order
	add(t, st, "job-a", requests(1, 5))
	if diff := cmp.Diff([]sluice.Item{item(1, 0), item(2, 0), item(3, 0)}, claim(t, st, "job-a", "w1", 3, longLease)); diff != "" {
		t.Errorf("first claim (-want +got):\n%s", diff)
	}
	for _, step := range []struct {
		n    int
		want []int64
	}{{4, []int64{4, 5, 6, 7}}, {10, []int64{8, 9, 10}}, {10, []int64{}}} {
		if got := claimLines(t, st, "job-a", "w1", step.n, longLease); !slices.Equal(got, step.want) {
			t.Errorf("claim of %d = %v, want %v", step.n, got, step.want)
		}
	}
	if got, want := countsOf(stats(t, st, "job-a")), (counts{Total: 10, InFlight: 10}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}

func testConcurrentClaimsNeverOverlap(t *testing.T, st sluice.Store) {
	const lines, owners, batch = 600, 4, 7
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, lines))
	claimed := make([][]int64, owners)
	errs := make([]error, owners)
	var wg sync.WaitGroup
	for w := range owners {
		wg.Go(func() {
			owner := fmt.Sprintf("w%d", w)
			for {
				items, err := st.Claim(t.Context(), sluice.ClaimParams{JobID: "job-a", Owner: owner, Max: batch, Lease: longLease})
				if err != nil {
					errs[w] = err
					return
				}
				if len(items) == 0 {
					return
				}
				outcomes := make([]sluice.Outcome, len(items))
				for i, it := range items {
					claimed[w] = append(claimed[w], it.Line)
					outcomes[i] = done(it.Line, 1, 0)
				}
				if err := st.Complete(t.Context(), "job-a", owner, outcomes); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[int64]string{}
	for w, ls := range claimed {
		if errs[w] != nil {
			t.Errorf("owner w%d: %v", w, errs[w])
		}
		for _, l := range ls {
			if other, dup := seen[l]; dup {
				t.Errorf("line %d claimed by %s and w%d", l, other, w)
			}
			seen[l] = fmt.Sprintf("w%d", w)
		}
	}
	if len(seen) != lines {
		t.Errorf("%d lines claimed, want %d", len(seen), lines)
	}
	if got, want := countsOf(stats(t, st, "job-a")), (counts{Total: lines, Done: lines}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}

func testExpiredLeaseIsReclaimed(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 5))
	t0 := time.Now()
	if got := claimLinesAt(t, st, "job-a", "w1", 2, tinyLease, t0); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("w1 claimed %v, want [1 2]", got)
	}
	t1 := t0.Add(expiry)
	if got := claimLinesAt(t, st, "job-a", "w2", 3, longLease, t1); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("w2 claimed %v, want the expired [1 2] before the pending 3", got)
	}
	// w1 lost its lease: its answer is not recorded over w2's claim.
	complete(t, st, "job-a", "w1", done(1, 1, 0))
	if got, want := countsOf(stats(t, st, "job-a")), (counts{Total: 5, Pending: 2, InFlight: 3}); got != want {
		t.Errorf("after w1's late answer: %+v, want %+v", got, want)
	}
	complete(t, st, "job-a", "w2", done(1, 1, 0))
	if got, want := countsOf(stats(t, st, "job-a")), (counts{Total: 5, Pending: 2, InFlight: 2, Done: 1}); got != want {
		t.Errorf("after w2's answer: %+v, want %+v", got, want)
	}
	if got := claimLinesAt(t, st, "job-a", "w3", 10, longLease, t1); !slices.Equal(got, []int64{4, 5}) {
		t.Errorf("w3 claimed %v, want [4 5]: w2's leases hold", got)
	}
}

func testReclaimKeepsAttempts(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 1))
	claim(t, st, "job-a", "w1", 1, longLease)
	complete(t, st, "job-a", "w1", sluice.Outcome{Line: 1, State: sluice.StateInFlight, Attempts: 2, StatusCode: 503})
	t0 := time.Now()
	renewAt(t, st, "job-a", "w1", tinyLease, t0)
	if diff := cmp.Diff([]sluice.Item{item(1, 2)}, claimAt(t, st, "job-a", "w2", 1, longLease, t0.Add(expiry))); diff != "" {
		t.Errorf("reclaimed item (-want +got):\n%s", diff)
	}
}

func testCompleteFromNonOwnerIgnored(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 3))
	claim(t, st, "job-a", "w1", 2, longLease)
	complete(t, st, "job-a", "w2", done(1, 1, 0)) // not w2's
	complete(t, st, "job-a", "w1", done(3, 1, 0)) // never claimed
	if got, want := countsOf(stats(t, st, "job-a")), (counts{Total: 3, Pending: 1, InFlight: 2}); got != want {
		t.Fatalf("after outcomes from non-owners: %+v, want %+v", got, want)
	}
	complete(t, st, "job-a", "w1", done(1, 1, 0))
	failed := sluice.Outcome{Line: 1, State: sluice.StateFailed, Attempts: 2, StatusCode: 500}
	complete(t, st, "job-a", "w1", failed) // final already
	res := results(t, st, "job-a", 0, 0)
	if len(res) != 1 || res[0].State != sluice.StateDone || res[0].StatusCode != 200 {
		t.Errorf("results %+v, want line 1 done with 200", res)
	}
	if diff := cmp.Diff([]sluice.Item{item(3, 0)}, claim(t, st, "job-a", "w2", 10, longLease)); diff != "" {
		t.Errorf("claim after (-want +got):\n%s", diff)
	}
}

func testCompletePendingReleases(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 2))
	claim(t, st, "job-a", "w1", 2, longLease)
	complete(t, st, "job-a", "w1", sluice.Outcome{Line: 1, State: sluice.StatePending, Attempts: 2, Throttled: 1})
	s := stats(t, st, "job-a")
	if got, want := countsOf(s), (counts{Total: 2, Pending: 1, InFlight: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if s.Attempts != 2 || s.Throttled != 1 {
		t.Errorf("attempts %d, throttled %d; want 2, 1", s.Attempts, s.Throttled)
	}
	want := item(1, 2)
	want.Throttled = 1 // the claim carries the 429s so far, so the next outcome keeps them
	if diff := cmp.Diff([]sluice.Item{want}, claim(t, st, "job-a", "w2", 10, longLease)); diff != "" {
		t.Errorf("claim of the released line (-want +got):\n%s", diff)
	}
}

func testCompleteInFlightKeepsLease(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 1))
	claim(t, st, "job-a", "w1", 1, longLease)
	complete(t, st, "job-a", "w1", sluice.Outcome{Line: 1, State: sluice.StateInFlight, Attempts: 1, Throttled: 1,
		StatusCode: 429, Body: json.RawMessage(`{"error":{"message":"slow down"}}`), Latency: time.Second})
	if got := claimLines(t, st, "job-a", "w2", 10, longLease); len(got) != 0 {
		t.Fatalf("w2 claimed %v while w1 retries them", got)
	}
	s := stats(t, st, "job-a")
	if got, want := countsOf(s), (counts{Total: 1, InFlight: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if s.Attempts != 1 || s.Throttled != 1 || s.Retries != 0 {
		t.Errorf("attempts %d, throttled %d, retries %d; want 1, 1, 0", s.Attempts, s.Throttled, s.Retries)
	}
	// The final outcome carries the totals: counts are set, not added.
	o := done(1, 2, 100*time.Millisecond)
	o.Throttled = 1
	complete(t, st, "job-a", "w1", o)
	s = stats(t, st, "job-a")
	if s.Done != 1 || s.Attempts != 2 || s.Throttled != 1 || s.Retries != 1 {
		t.Errorf("done %d, attempts %d, throttled %d, retries %d; want 1, 2, 1, 1", s.Done, s.Attempts, s.Throttled, s.Retries)
	}
}

func testCompleteRecordsLastAnswer(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 4))
	claim(t, st, "job-a", "w1", 4, longLease)
	errBody := json.RawMessage(`{"error":{"message":"bad messages","type":"invalid_request_error"}}`)
	complete(t, st, "job-a", "w1",
		done(1, 1, time.Second),
		sluice.Outcome{Line: 2, State: sluice.StateFailed, Attempts: 1, StatusCode: 400, RequestID: "req_2", Body: errBody},
		// Line 3 got a 500, then no answer at all: its last answer is the connection error.
		sluice.Outcome{Line: 3, State: sluice.StateInFlight, Attempts: 1, StatusCode: 500, RequestID: "req_3",
			Body: json.RawMessage(`{"error":{"message":"boom"}}`)},
		sluice.Outcome{Line: 3, State: sluice.StateFailed, Attempts: 2, ErrorCode: sluice.CodeConnection,
			ErrorMessage: "connection reset by peer"},
	)
	want := []sluice.Result{
		{Line: 1, CustomID: "req-1", State: sluice.StateDone, StatusCode: 200, RequestID: "req_1",
			Body: json.RawMessage(`{"answer":1}`), Usage: sluice.Usage{PromptTokens: 10, CompletionTokens: 5}},
		{Line: 2, CustomID: "req-2", State: sluice.StateFailed, StatusCode: 400, RequestID: "req_2", Body: errBody},
		{Line: 3, CustomID: "req-3", State: sluice.StateFailed, ErrorCode: sluice.CodeConnection,
			ErrorMessage: "connection reset by peer"},
	}
	if diff := cmp.Diff(want, results(t, st, "job-a", 0, 0)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func testRenewSetsOwnLeases(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 3))
	now := time.Now()
	claimAt(t, st, "job-a", "w1", 3, longLease, now)
	renewAt(t, st, "job-a", "w1", tinyLease, now)
	now = now.Add(expiry)
	if got := claimLinesAt(t, st, "job-a", "w2", 10, longLease, now); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("w2 claimed %v, want [1 2 3]: w1 renewed its leases to a millisecond", got)
	}
	renewAt(t, st, "job-a", "w1", longLease, now) // w1 holds nothing now: w2's leases stay as they are
	renewAt(t, st, "job-a", "w2", longLease, now)
	now = now.Add(expiry)
	if got := claimLinesAt(t, st, "job-a", "w3", 10, longLease, now); len(got) != 0 {
		t.Fatalf("w3 claimed %v, want nothing: w2 renewed its leases", got)
	}
	renewAt(t, st, "job-a", "w3", tinyLease, now) // w3 holds nothing
	renewAt(t, st, "job-a", "w2", tinyLease, now)
	now = now.Add(expiry)
	if got := claimLinesAt(t, st, "job-a", "w3", 10, longLease, now); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("w3 claimed %v, want [1 2 3]", got)
	}
}

func testReleaseOwnerOrAll(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 5))
	claim(t, st, "job-a", "w1", 2, longLease)
	claim(t, st, "job-a", "w2", 2, longLease)
	complete(t, st, "job-a", "w1", sluice.Outcome{Line: 1, State: sluice.StateInFlight, Attempts: 3})
	release(t, st, "job-a", "w1")
	if got, want := countsOf(stats(t, st, "job-a")), (counts{Total: 5, Pending: 3, InFlight: 2}); got != want {
		t.Errorf("after releasing w1: %+v, want %+v", got, want)
	}
	if diff := cmp.Diff([]sluice.Item{item(1, 3), item(2, 0)}, claim(t, st, "job-a", "w3", 2, longLease)); diff != "" {
		t.Errorf("claim of w1's released lines (-want +got):\n%s", diff)
	}
	release(t, st, "job-a", "")
	s := stats(t, st, "job-a")
	if got, want := countsOf(s), (counts{Total: 5, Pending: 5}); got != want {
		t.Errorf("after releasing all: %+v, want %+v", got, want)
	}
	if s.Attempts != 3 {
		t.Errorf("attempts %d, want 3: a release spends none", s.Attempts)
	}
}

func testCompleteSameLineInOrder(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 3))
	claim(t, st, "job-a", "w1", 3, longLease)
	// Outcomes for one line apply in order, each only while the line is still w1's.
	complete(t, st, "job-a", "w1",
		done(1, 1, 0),
		sluice.Outcome{Line: 1, State: sluice.StateFailed, Attempts: 2, StatusCode: 500}, // final already
		sluice.Outcome{Line: 2, State: sluice.StatePending, Attempts: 1},
		done(2, 2, 0), // released already
		sluice.Outcome{Line: 3, State: sluice.StateInFlight, Attempts: 1, StatusCode: 429, Throttled: 1},
		sluice.Outcome{Line: 3, State: sluice.StatePending, Attempts: 1, Throttled: 1},
	)
	if got := results(t, st, "job-a", 0, 0); len(got) != 1 || got[0].Line != 1 || got[0].StatusCode != 200 {
		t.Errorf("results %+v, want line 1 done with 200", got)
	}
	s := stats(t, st, "job-a")
	if got, want := countsOf(s), (counts{Total: 3, Pending: 2, Done: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if s.Attempts != 3 || s.Throttled != 1 {
		t.Errorf("attempts %d, throttled %d; want 3, 1", s.Attempts, s.Throttled)
	}
}

// testReclaimAfterReleaseCountsRepaid: a request a run left in flight (released without
// an outcome) may have been answered and paid; claiming it again counts it in
// Stats.Repaid, once. Requests released with an outcome, and fresh ones, count nothing.
func testReclaimAfterReleaseCountsRepaid(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 6))
	claim(t, st, "job-a", "dead", 3, longLease) // lines 1-3: the owner is killed
	claim(t, st, "job-a", "live", 1, longLease) // line 4: given back with an outcome
	complete(t, st, "job-a", "live", sluice.Outcome{Line: 4, State: sluice.StatePending})
	if got := stats(t, st, "job-a").Repaid; got != 0 {
		t.Fatalf("repaid %d before any release, want 0", got)
	}
	release(t, st, "job-a", "") // the next process takes the job over
	if got := claimLines(t, st, "job-a", "next", 2, longLease); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("claimed %v, want [1 2]", got)
	}
	if got := stats(t, st, "job-a").Repaid; got != 2 {
		t.Errorf("repaid %d after claiming 2 orphaned requests again, want 2", got)
	}
	// Line 3 is orphaned too; 4, 5, 6 are not. A second claim of 1 and 2 (after an
	// orderly release) counts nothing more.
	complete(t, st, "job-a", "next", sluice.Outcome{Line: 1, State: sluice.StatePending}, sluice.Outcome{Line: 2, State: sluice.StatePending})
	claim(t, st, "job-a", "next", 10, longLease)
	if got := stats(t, st, "job-a").Repaid; got != 3 {
		t.Errorf("repaid %d after claiming every line, want 3", got)
	}
}
