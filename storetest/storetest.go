package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

// Lease lengths the scenarios use: one that outlives any test, and one that a claim
// expiry later (its Now moved on, not a sleep) finds expired.
const (
	longLease = time.Hour
	tinyLease = time.Millisecond
	expiry    = 10 * time.Millisecond
)

// scenario is one subtest of the suite.
type scenario struct {
	name string
	run  func(t *testing.T, st sluice.Store)
}

// Run runs the conformance suite. open must return a new, empty store for each subtest;
// Run closes it when the subtest ends. Subtests run in parallel, each on its own store.
// Scenarios of the optional interfaces (PartStore, RateStore, CacheStore, HistoryStore,
// DeleteStore, and ObjectStore, UsageStore, ReservationStore and LeaseStore of sluice
// serve) are skipped on a store that lacks them. RunReopen runs the scenarios that
// reopen a store.
func Run(t *testing.T, open func(t *testing.T) sluice.Store) {
	t.Helper()
	var all []scenario
	all = append(all, jobScenarios...)
	all = append(all, ingestScenarios...)
	all = append(all, leaseScenarios...)
	all = append(all, resultScenarios...)
	all = append(all, statsScenarios...)
	all = append(all, unfinishedScenarios...)
	all = append(all, partScenarios...)
	all = append(all, rateScenarios...)
	all = append(all, cacheScenarios...)
	all = append(all, historyScenarios...)
	all = append(all, deleteScenarios...)
	all = append(all, retryScenarios...)
	all = append(all, timelineScenarios...)
	all = append(all, objectScenarios...)
	all = append(all, usageScenarios...)
	all = append(all, reservationScenarios...)
	all = append(all, objectLeaseScenarios...)
	for _, sc := range all {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			sc.run(t, st)
		})
	}
}

// implements returns st as a T, or skips the test on a store that lacks it.
func implements[T any](t *testing.T, st sluice.Store) T {
	t.Helper()
	v, ok := st.(T)
	if !ok {
		t.Skipf("%T does not implement storetest.%s", st, reflect.TypeFor[T]().Name())
	}
	return v
}

// request is the input line the scenarios use for line n, unless they say otherwise.
func request(n int64) sluice.NewRequest {
	return sluice.NewRequest{
		Line: n,
		Request: sluice.Request{
			CustomID: fmt.Sprintf("req-%d", n),
			Method:   "POST",
			URL:      sluice.EndpointChatCompletions,
			Body:     json.RawMessage(fmt.Sprintf(`{"model":"gpt-test","messages":[{"role":"user","content":"line %d"}]}`, n)),
		},
		Estimate: sluice.Estimate{Model: "gpt-test", PromptTokens: 10 + n, MaxOutputTokens: 100},
	}
}

// requests returns request(n) for n in [from, to].
func requests(from, to int64) []sluice.NewRequest {
	var reqs []sluice.NewRequest
	for n := from; n <= to; n++ {
		reqs = append(reqs, request(n))
	}
	return reqs
}

// item is the Item a claim of request(n) gives after attempts attempts.
func item(n int64, attempts int) sluice.Item {
	r := request(n)
	return sluice.Item{Line: n, Request: r.Request, Estimate: r.Estimate, Attempts: attempts}
}

// newJob creates a job with the given id.
func newJob(t *testing.T, st sluice.Store, id string) *sluice.Job {
	t.Helper()
	job := &sluice.Job{ID: id, State: sluice.JobRunning, Input: "input.jsonl", Fingerprint: "fp-" + id,
		Options: json.RawMessage(`{}`)}
	if err := st.CreateJob(t.Context(), job); err != nil {
		t.Fatalf("create job %s: %v", id, err)
	}
	return job
}

func add(t *testing.T, st sluice.Store, jobID string, reqs []sluice.NewRequest) {
	t.Helper()
	if err := st.AddRequests(t.Context(), jobID, reqs); err != nil {
		t.Fatalf("add requests: %v", err)
	}
}

// claim claims on the store's clock.
func claim(t *testing.T, st sluice.Store, jobID, owner string, n int, lease time.Duration) []sluice.Item {
	t.Helper()
	return claimAt(t, st, jobID, owner, n, lease, time.Time{})
}

// claimAt claims at the time now.
func claimAt(t *testing.T, st sluice.Store, jobID, owner string, n int, lease time.Duration, now time.Time) []sluice.Item {
	t.Helper()
	items, err := st.Claim(t.Context(), sluice.ClaimParams{JobID: jobID, Owner: owner, Max: n, Lease: lease, Now: now})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return items
}

// claimLines claims like claim and returns the lines claimed.
func claimLines(t *testing.T, st sluice.Store, jobID, owner string, n int, lease time.Duration) []int64 {
	t.Helper()
	return lines(claim(t, st, jobID, owner, n, lease))
}

// claimLinesAt claims like claimAt and returns the lines claimed.
func claimLinesAt(t *testing.T, st sluice.Store, jobID, owner string, n int, lease time.Duration, now time.Time) []int64 {
	t.Helper()
	return lines(claimAt(t, st, jobID, owner, n, lease, now))
}

func lines(items []sluice.Item) []int64 {
	ls := []int64{}
	for _, it := range items {
		ls = append(ls, it.Line)
	}
	return ls
}

func complete(t *testing.T, st sluice.Store, jobID, owner string, outcomes ...sluice.Outcome) {
	t.Helper()
	if err := st.Complete(t.Context(), jobID, owner, outcomes); err != nil {
		t.Fatalf("complete: %v", err)
	}
}

// renewAt renews owner's leases at the time now.
func renewAt(t *testing.T, st sluice.Store, jobID, owner string, lease time.Duration, now time.Time) {
	t.Helper()
	if err := st.Renew(t.Context(), sluice.RenewParams{JobID: jobID, Owner: owner, Lease: lease, Now: now}); err != nil {
		t.Fatalf("renew: %v", err)
	}
}

func release(t *testing.T, st sluice.Store, jobID, owner string) {
	t.Helper()
	if err := st.Release(t.Context(), jobID, owner); err != nil {
		t.Fatalf("release: %v", err)
	}
}

func results(t *testing.T, st sluice.Store, jobID string, after int64, limit int) []sluice.Result {
	t.Helper()
	var res []sluice.Result
	if err := st.Results(t.Context(), jobID, after, limit, func(r *sluice.Result) error {
		res = append(res, *r)
		return nil
	}); err != nil {
		t.Fatalf("results: %v", err)
	}
	return res
}

func resultLines(res []sluice.Result) []int64 {
	ls := []int64{}
	for _, r := range res {
		ls = append(ls, r.Line)
	}
	return ls
}

func stats(t *testing.T, st sluice.Store, jobID string) *sluice.Stats {
	t.Helper()
	s, err := st.Stats(t.Context(), jobID)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return s
}

func getJob(t *testing.T, st sluice.Store, id string) *sluice.Job {
	t.Helper()
	job, err := st.Job(t.Context(), id)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	return job
}

// done is a final 200 answer for line n.
func done(n int64, attempts int, latency time.Duration) sluice.Outcome {
	return sluice.Outcome{Line: n, State: sluice.StateDone, Attempts: attempts, StatusCode: 200,
		RequestID: fmt.Sprintf("req_%d", n), Body: json.RawMessage(fmt.Sprintf(`{"answer":%d}`, n)),
		Usage: sluice.Usage{PromptTokens: 10, CompletionTokens: 5}, Latency: latency}
}

// counts is the part of Stats that counts requests by state.
type counts struct{ Total, Pending, InFlight, Done, Failed int64 }

func countsOf(s *sluice.Stats) counts {
	return counts{Total: s.Total, Pending: s.Pending, InFlight: s.InFlight, Done: s.Done, Failed: s.Failed}
}
