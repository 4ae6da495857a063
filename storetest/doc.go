// Package storetest is the conformance suite every sluice.Store implementation must pass.
// An implementation's tests call Run with a function that opens a new, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) sluice.Store {
//			st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return st
//		})
//	}
//
// Each scenario is a subtest with a store of its own, so one can be run alone
// (go test -run 'TestConformance/ExpiredLeaseIsReclaimed').
//
// # What the suite pins down
//
// Beyond the doc comments of sluice.Store, the suite fixes these points, which every
// implementation must agree on:
//
//   - CreateJob stores a zero CreatedAt as the time of the call; Jobs orders by
//     CreatedAt, newest first.
//   - AddRequests never lowers a job's Ingested count.
//   - A request's stored fields (attempts, throttled, status, request id, body, error,
//     usage, latency) are set, not added to, by each outcome: an outcome carries the
//     request's totals and its last answer.
//   - An outcome for a request that is final, pending or leased by another owner
//     changes nothing.
//   - Retries count attempts beyond each request's first; FailuresByCode keys a failed
//     request by its status code in decimal when it has one, else by its error code.
//   - Latency percentiles are nearest-rank: the p-th percentile of n latencies is the
//     ceil(p×n/100)-th smallest, over the final outcome of each done request.
//   - Results may be read while other calls use the store, fn included.
//
// The suite sleeps only where time passing is its input: past a lease of a millisecond,
// for 10 ms, to let the lease expire.
package storetest
