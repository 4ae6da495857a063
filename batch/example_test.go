package batch_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/input"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// A job through the Batch API: ingest the file, then step until every request is final,
// polling every half minute. Any process can run the loop again after a crash: the store
// holds the parts and what they finished.
func ExampleRunner_Step() {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, "sluice.db")
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	api, err := openai.New(openai.Config{BaseURL: "https://api.openai.com/v1", APIKey: os.Getenv("OPENAI_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	r, err := batch.New(st, api, batch.Config{MaxRounds: 3})
	if err != nil {
		log.Fatal(err)
	}
	job := &sluice.Job{ID: "job_example", State: sluice.JobRunning, Input: "requests.jsonl"}
	if err := st.CreateJob(ctx, job); err != nil {
		log.Fatal(err)
	}
	in, err := os.Open("requests.jsonl")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	if err := batch.Ingest(ctx, st, job, input.NewSource(in, tokens.Default(), 0), func(le *sluice.LineError) {
		fmt.Println("not submitted:", le)
	}); err != nil {
		log.Fatal(err)
	}
	for {
		prog, err := r.Step(ctx, job, true)
		if err != nil {
			log.Fatal(err)
		}
		if prog.Done || prog.Leftover > 0 {
			fmt.Printf("%d done, %d failed, %d left over\n", prog.Stats.Done, prog.Stats.Failed, prog.Leftover)
			return
		}
		time.Sleep(30 * time.Second)
	}
}
