package sqlite_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

// TestModelHistory checks that ModelHistory sums done requests with usage by model over
// every job, and leaves out failed, pending and usage-less requests.
func TestModelHistory(t *testing.T) {
	ctx := t.Context()
	st := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer st.Close()

	empty, err := st.ModelHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(empty) != 0 {
		t.Fatalf("history of an empty ledger: %v", empty)
	}

	// Each job: lines 1-2 on model a, 3 on model b, 4 left pending.
	for j, jobID := range []string{"job-1", "job-2"} {
		if err := st.CreateJob(ctx, &sluice.Job{ID: jobID, State: sluice.JobRunning}); err != nil {
			t.Fatal(err)
		}
		var reqs []sluice.NewRequest
		for n, model := range []string{"a", "a", "b", "a"} {
			line := int64(n + 1)
			reqs = append(reqs, sluice.NewRequest{
				Line:     line,
				Request:  sluice.Request{CustomID: fmt.Sprint(line), Method: "POST", URL: sluice.EndpointChatCompletions, Body: json.RawMessage(`{}`)},
				Estimate: sluice.Estimate{Model: model, PromptTokens: 10},
			})
		}
		if err := st.AddRequests(ctx, jobID, reqs); err != nil {
			t.Fatal(err)
		}
		items, err := st.Claim(ctx, sluice.ClaimParams{JobID: jobID, Owner: "w", Max: 3, Lease: time.Minute})
		if err != nil || len(items) != 3 {
			t.Fatalf("claim: %d items, %v", len(items), err)
		}
		k := int64(j + 1)
		outcomes := []sluice.Outcome{
			{Line: 1, State: sluice.StateDone, Attempts: 1, StatusCode: 200, Usage: sluice.Usage{PromptTokens: 10 * k, CompletionTokens: 100 * k, CachedTokens: k}},
			// Done without usage (an upstream that reports none): left out.
			{Line: 2, State: sluice.StateDone, Attempts: 1, StatusCode: 200},
			{Line: 3, State: sluice.StateDone, Attempts: 1, StatusCode: 200, Usage: sluice.Usage{PromptTokens: 7, CompletionTokens: 3}},
		}
		if j == 1 {
			// Failed with usage recorded: left out too.
			outcomes[2] = sluice.Outcome{Line: 3, State: sluice.StateFailed, Attempts: 1, StatusCode: 500, Usage: sluice.Usage{PromptTokens: 1000, CompletionTokens: 1000}}
		}
		if err := st.Complete(ctx, jobID, "w", outcomes); err != nil {
			t.Fatal(err)
		}
	}

	got, err := st.ModelHistory(ctx)
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
