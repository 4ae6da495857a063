package storetest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

// HistoryStore sums the usage of done requests by model over every job, for estimates.
// The history scenarios run on stores that implement it and are skipped on others.
type HistoryStore = sluice.HistoryStore

var historyScenarios = []scenario{
	{"ModelHistorySumsDoneUsage", testModelHistorySumsDoneUsage},
}

// testModelHistorySumsDoneUsage checks that ModelHistory sums done requests with usage
// by model over every job, and leaves out failed, pending and usage-less requests.
func testModelHistorySumsDoneUsage(t *testing.T, st sluice.Store) {
	hs, ok := st.(HistoryStore)
	if !ok {
		t.Skipf("%T does not implement storetest.HistoryStore", st)
	}
	ctx := t.Context()
	if empty, err := hs.ModelHistory(ctx); err != nil || len(empty) != 0 {
		t.Fatalf("history of an empty ledger: %v, %v", empty, err)
	}
	// Each job: lines 1-2 on model a, 3 on model b, 4 left pending.
	for j, jobID := range []string{"job-1", "job-2"} {
		newJob(t, st, jobID)
		var reqs []sluice.NewRequest
		for n, model := range []string{"a", "a", "b", "a"} {
			line := int64(n + 1)
			reqs = append(reqs, sluice.NewRequest{
				Line: line,
				Request: sluice.Request{CustomID: fmt.Sprint(line), Method: "POST", URL: sluice.EndpointChatCompletions,
					Body: json.RawMessage(`{}`)},
				Estimate: sluice.Estimate{Model: model, PromptTokens: 10},
			})
		}
		add(t, st, jobID, reqs)
		if got := claim(t, st, jobID, "w", 3, longLease); len(got) != 3 {
			t.Fatalf("claimed %d items, want 3", len(got))
		}
		k := int64(j + 1)
		outcomes := []sluice.Outcome{
			{Line: 1, State: sluice.StateDone, Attempts: 1, StatusCode: 200,
				Usage: sluice.Usage{PromptTokens: 10 * k, CompletionTokens: 100 * k, CachedTokens: k}},
			// Done without usage (an upstream that reports none): left out.
			{Line: 2, State: sluice.StateDone, Attempts: 1, StatusCode: 200},
			{Line: 3, State: sluice.StateDone, Attempts: 1, StatusCode: 200, Usage: sluice.Usage{PromptTokens: 7, CompletionTokens: 3}},
		}
		if j == 1 {
			// Failed with usage recorded: left out too.
			outcomes[2] = sluice.Outcome{Line: 3, State: sluice.StateFailed, Attempts: 1, StatusCode: 500,
				Usage: sluice.Usage{PromptTokens: 1000, CompletionTokens: 1000}}
		}
		complete(t, st, jobID, "w", outcomes...)
	}
	got, err := hs.ModelHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sluice.ModelStats{
		"a": {Model: "a", Requests: 2, Usage: sluice.Usage{PromptTokens: 30, CompletionTokens: 300, CachedTokens: 3}},
		"b": {Model: "b", Requests: 1, Usage: sluice.Usage{PromptTokens: 7, CompletionTokens: 3}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ModelHistory (-want +got):\n%s", diff)
	}
}
