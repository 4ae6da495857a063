package storetest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluice-llm/sluice"
)

var statsScenarios = []scenario{
	{"StatsOfEmptyJob", testStatsOfEmptyJob},
	{"StatsCountsAndUsage", testStatsCountsAndUsage},
	{"StatsLatencyPercentiles", testStatsLatencyPercentiles},
}

// statsOpts compare Stats: nil and empty are the same, and ByModel's order is not fixed.
var statsOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmpopts.SortSlices(func(a, b sluice.ModelStats) bool { return a.Model < b.Model }),
}

func testStatsOfEmptyJob(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	if diff := cmp.Diff(&sluice.Stats{}, stats(t, st, "job-a"), statsOpts); diff != "" {
		t.Errorf("stats of an empty job (-want +got):\n%s", diff)
	}
}

func testStatsCountsAndUsage(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	reqs := requests(1, 10)
	for i := range reqs[4:8] {
		reqs[4+i].Estimate.Model = "gpt-other"
	}
	reqs[8].Err = &sluice.LineError{Line: 9, Msg: "not JSON"}
	reqs[9].Request.CustomID = "req-1"
	add(t, st, "job-a", reqs)
	claim(t, st, "job-a", "w1", 10, longLease)
	ms := time.Millisecond
	complete(t, st, "job-a", "w1",
		sluice.Outcome{Line: 1, State: sluice.StateDone, Attempts: 1, StatusCode: 200, Latency: 100 * ms,
			Usage: sluice.Usage{PromptTokens: 10, CompletionTokens: 5, CachedTokens: 2}},
		sluice.Outcome{Line: 2, State: sluice.StateDone, Attempts: 3, Throttled: 2, StatusCode: 200, Latency: 300 * ms,
			Usage: sluice.Usage{PromptTokens: 20, CompletionTokens: 10}},
		sluice.Outcome{Line: 3, State: sluice.StateFailed, Attempts: 4, Throttled: 4, StatusCode: 429, Latency: 5 * ms},
		sluice.Outcome{Line: 4, State: sluice.StateFailed, Attempts: 1, StatusCode: 400, Latency: 7 * ms},
		sluice.Outcome{Line: 5, State: sluice.StateFailed, Attempts: 2, ErrorCode: sluice.CodeConnection},
		sluice.Outcome{Line: 6, State: sluice.StateDone, Attempts: 2, StatusCode: 200, Latency: 200 * ms,
			Usage: sluice.Usage{PromptTokens: 100, CompletionTokens: 50, CachedTokens: 25}},
		sluice.Outcome{Line: 7, State: sluice.StateInFlight, Attempts: 1, Throttled: 1, StatusCode: 429},
		sluice.Outcome{Line: 8, State: sluice.StatePending, Attempts: 2},
	)
	want := &sluice.Stats{
		Total: 10, Pending: 1, InFlight: 1, Done: 3, Failed: 5,
		Attempts:  1 + 3 + 4 + 1 + 2 + 2 + 1 + 2,
		Retries:   0 + 2 + 3 + 0 + 1 + 1 + 0 + 1,
		Throttled: 2 + 4 + 1,
		Usage:     sluice.Usage{PromptTokens: 130, CompletionTokens: 65, CachedTokens: 27},
		ByModel: []sluice.ModelStats{
			{Model: "gpt-test", Requests: 2, Usage: sluice.Usage{PromptTokens: 30, CompletionTokens: 15, CachedTokens: 2}},
			{Model: "gpt-other", Requests: 1, Usage: sluice.Usage{PromptTokens: 100, CompletionTokens: 50, CachedTokens: 25}},
		},
		LatencyP50: 200 * ms, LatencyP95: 300 * ms, LatencyP99: 300 * ms,
		FailuresByCode: map[string]int64{"429": 1, "400": 1, sluice.CodeConnection: 1,
			sluice.CodeInvalidRequest: 1, sluice.CodeDuplicateID: 1},
	}
	if diff := cmp.Diff(want, stats(t, st, "job-a"), statsOpts); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func testStatsLatencyPercentiles(t *testing.T, st sluice.Store) {
	const n = 200
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, n+10))
	claim(t, st, "job-a", "w1", n+10, longLease)
	// Line l is done in l ms, answered in a shuffled order; the slow first attempts of
	// some lines and the failed lines do not count.
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	var outcomes []sluice.Outcome
	for _, i := range order {
		l, attempts := int64(i+1), 1
		if l%10 == 0 {
			outcomes = append(outcomes, sluice.Outcome{Line: l, State: sluice.StateInFlight, Attempts: 1, Latency: time.Hour})
			attempts = 2
		}
		outcomes = append(outcomes, done(l, attempts, time.Duration(l)*time.Millisecond))
	}
	for l := int64(n + 1); l <= n+10; l++ {
		outcomes = append(outcomes, sluice.Outcome{Line: l, State: sluice.StateFailed, Attempts: 1, StatusCode: 500,
			Latency: time.Minute})
	}
	complete(t, st, "job-a", "w1", outcomes...)
	s := stats(t, st, "job-a")
	// Nearest rank: the ceil(p×n/100)-th smallest of 1..200 ms.
	want := [3]time.Duration{100 * time.Millisecond, 190 * time.Millisecond, 198 * time.Millisecond}
	if got := [3]time.Duration{s.LatencyP50, s.LatencyP95, s.LatencyP99}; got != want {
		t.Errorf("p50, p95, p99 = %v, want %v", got, want)
	}
	// Small sets: each percentile is one of the latencies.
	for i, tc := range []struct {
		latencies []time.Duration
		want      [3]time.Duration
	}{
		{[]time.Duration{7 * time.Millisecond}, [3]time.Duration{7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond}},
		{[]time.Duration{3, 1, 2}, [3]time.Duration{2, 3, 3}},
	} {
		id := fmt.Sprintf("job-small-%d", i)
		newJob(t, st, id)
		add(t, st, id, requests(1, int64(len(tc.latencies))))
		claim(t, st, id, "w1", len(tc.latencies), longLease)
		for j, lat := range tc.latencies {
			complete(t, st, id, "w1", done(int64(j+1), 1, lat))
		}
		s := stats(t, st, id)
		if got := [3]time.Duration{s.LatencyP50, s.LatencyP95, s.LatencyP99}; got != tc.want {
			t.Errorf("latencies %v: p50, p95, p99 = %v, want %v", tc.latencies, got, tc.want)
		}
	}
}
