package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/sluice-llm/sluice"
)

var resultScenarios = []scenario{
	{"ResultsInLineOrderAfterAndLimit", testResultsInLineOrder},
	{"ResultsStopOnCallbackError", testResultsStopOnCallbackError},
	{"ResultsStreamLargeJob", testResultsStreamLargeJob},
	{"ResultsCarryUsage", testResultsCarryUsage},
}

// testResultsCarryUsage checks that a result carries its answer's usage, cached tokens
// included, so that readers of results need not parse it from the body.
func testResultsCarryUsage(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 2))
	claim(t, st, "job-a", "w1", 2, longLease)
	u := sluice.Usage{PromptTokens: 120, CompletionTokens: 34, CachedTokens: 100}
	o := done(1, 1, 0)
	o.Usage = u
	complete(t, st, "job-a", "w1", o, sluice.Outcome{Line: 2, State: sluice.StateFailed, Attempts: 1, StatusCode: 400})
	res := results(t, st, "job-a", 0, 0)
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	if res[0].Usage != u {
		t.Errorf("line 1: usage %+v, want %+v", res[0].Usage, u)
	}
	if res[1].Usage != (sluice.Usage{}) {
		t.Errorf("line 2 (no answer with usage): usage %+v, want zero", res[1].Usage)
	}
}

func testResultsInLineOrder(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 10))
	claim(t, st, "job-a", "w1", 10, longLease)
	for _, l := range []int64{7, 2, 9, 4, 1} { // answered out of order; 3, 5, 6, 8, 10 still in flight
		o := done(l, 1, 0)
		if l%2 == 0 {
			o = sluice.Outcome{Line: l, State: sluice.StateFailed, Attempts: 1, StatusCode: 500}
		}
		complete(t, st, "job-a", "w1", o)
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 0, []int64{1, 2, 4, 7, 9}},
		{0, -1, []int64{1, 2, 4, 7, 9}},
		{2, 0, []int64{4, 7, 9}},
		{3, 0, []int64{4, 7, 9}},
		{0, 2, []int64{1, 2}},
		{4, 1, []int64{7}},
		{4, 10, []int64{7, 9}},
		{9, 0, []int64{}},
		{100, 0, []int64{}},
	} {
		if got := resultLines(results(t, st, "job-a", tc.after, tc.limit)); !slices.Equal(got, tc.want) {
			t.Errorf("results after %d, limit %d: lines %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
}

func testResultsStopOnCallbackError(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	add(t, st, "job-a", requests(1, 5))
	claim(t, st, "job-a", "w1", 5, longLease)
	complete(t, st, "job-a", "w1", done(1, 1, 0), done(2, 1, 0), done(3, 1, 0), done(4, 1, 0))
	errStop := errors.New("disk full")
	calls := 0
	err := st.Results(t.Context(), "job-a", 0, 0, func(*sluice.Result) error {
		calls++
		if calls == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("Results = %v, want the callback's error", err)
	}
	if calls != 2 {
		t.Errorf("callback called %d times, want 2", calls)
	}
}

// testResultsStreamLargeJob reads a job large enough that a store must page through it,
// calling the store from inside the callback.
func testResultsStreamLargeJob(t *testing.T, st sluice.Store) {
	const lines = 10_000
	newJob(t, st, "job-a")
	for from := int64(1); from <= lines; from += 1000 {
		add(t, st, "job-a", requests(from, from+999))
	}
	for {
		items := claim(t, st, "job-a", "w1", 256, longLease)
		if len(items) == 0 {
			break
		}
		outcomes := make([]sluice.Outcome, len(items))
		for i, it := range items {
			outcomes[i] = done(it.Line, 1, 0)
		}
		complete(t, st, "job-a", "w1", outcomes...)
	}
	next := int64(1)
	err := st.Results(t.Context(), "job-a", 0, 0, func(r *sluice.Result) error {
		if r.Line != next {
			return fmt.Errorf("result for line %d, want line %d", r.Line, next)
		}
		if want := fmt.Sprintf(`{"answer":%d}`, r.Line); string(r.Body) != want || r.CustomID != fmt.Sprintf("req-%d", r.Line) {
			return fmt.Errorf("line %d: custom_id %q, body %s; want its own", r.Line, r.CustomID, r.Body)
		}
		if next == lines/2 { // the store stays usable while results stream
			if _, err := st.Stats(t.Context(), "job-a"); err != nil {
				return fmt.Errorf("stats inside Results: %w", err)
			}
		}
		next++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != lines+1 {
		t.Errorf("%d results, want %d", next-1, lines)
	}
	var body json.RawMessage
	if err := st.Results(t.Context(), "job-a", lines-1, 0, func(r *sluice.Result) error {
		body = r.Body
		return nil
	}); err != nil || string(body) != fmt.Sprintf(`{"answer":%d}`, lines) {
		t.Errorf("last result body %s, %v", body, err)
	}
}
