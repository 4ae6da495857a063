package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
)

// A worker's round trip through the ledger: a job's lines are added, claimed under a
// lease, answered, and read back in line order.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sluice-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	if err := st.CreateJob(ctx, &sluice.Job{ID: "job-1", State: sluice.JobRunning, Input: "requests.jsonl"}); err != nil {
		log.Fatal(err)
	}
	var lines []sluice.NewRequest
	for i, id := range []string{"doc-1", "doc-2", "doc-1"} {
		lines = append(lines, sluice.NewRequest{Line: int64(i + 1), Request: sluice.Request{
			CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions,
			Body: json.RawMessage(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`),
		}})
	}
	if err := st.AddRequests(ctx, "job-1", lines); err != nil {
		log.Fatal(err)
	}

	items, err := st.Claim(ctx, sluice.ClaimParams{JobID: "job-1", Owner: "worker-1", Max: 10, Lease: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	var outcomes []sluice.Outcome
	for _, it := range items {
		outcomes = append(outcomes, sluice.Outcome{Line: it.Line, State: sluice.StateDone, Attempts: 1,
			StatusCode: 200, Body: json.RawMessage(`{"answer":"` + it.Request.CustomID + `"}`)})
	}
	if err := st.Complete(ctx, "job-1", "worker-1", outcomes); err != nil {
		log.Fatal(err)
	}

	err = st.Results(ctx, "job-1", 0, 0, func(r *sluice.Result) error {
		fmt.Println(r.Line, r.CustomID, r.State, r.StatusCode, string(r.Body)+r.ErrorMessage)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1 doc-1 done 200 {"answer":"doc-1"}
	// 2 doc-2 done 200 {"answer":"doc-2"}
	// 3 doc-1 failed 0 line 3: custom_id "doc-1" duplicates line 1
}
