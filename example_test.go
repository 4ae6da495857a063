package sluice_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/input"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// echo is an Upstream that answers every request at once, reporting 9 prompt and 5
// completion tokens. A real program sends through openai.New; a test, through sim.
type echo struct {
	// hold, when set, is called before each answer: an example stops a run there.
	hold func()
}

func (u echo) Do(_ context.Context, req *sluice.Request) (*sluice.Response, error) {
	if u.hold != nil {
		u.hold()
	}
	body := fmt.Sprintf(`{"object":"chat.completion","choices":[{"message":{"role":"assistant","content":"echo %s"}}]}`, req.CustomID)
	return &sluice.Response{StatusCode: 200, Body: json.RawMessage(body), Usage: sluice.Usage{PromptTokens: 9, CompletionTokens: 5}}, nil
}

func (echo) BaseURL() string { return "http://echo.invalid/v1" }

// exampleInput is three chat requests in the Batch API input format.
func exampleInput() *strings.Reader {
	var b strings.Builder
	for _, id := range []string{"a", "b", "c"} {
		fmt.Fprintf(&b, `{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello world"}],"max_tokens":10}}`+"\n", id)
	}
	return strings.NewReader(b.String())
}

// exampleStore opens a ledger in a directory of its own, and a job in it.
func exampleStore(ctx context.Context, id string) (*sqlite.Store, *sluice.Job, func()) {
	dir, err := os.MkdirTemp("", "sluice-example-")
	if err != nil {
		log.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sluice.db"))
	if err != nil {
		log.Fatal(err)
	}
	job := &sluice.Job{ID: id, State: sluice.JobRunning, Input: "requests.jsonl"}
	if err := st.CreateJob(ctx, job); err != nil {
		log.Fatal(err)
	}
	return st, job, func() { st.Close(); os.RemoveAll(dir) }
}

// Run a job: the engine reads the input into the ledger, sends every request, and records
// each answer; the output is then written from the ledger, in input order.
func ExampleEngine_Start() {
	ctx := context.Background()
	st, job, done := exampleStore(ctx, "job_start")
	defer done()

	eng, err := sluice.New(st, echo{}, sluice.Config{Concurrency: 4})
	if err != nil {
		log.Fatal(err)
	}
	run, err := eng.Start(ctx, job, input.NewSource(exampleInput(), tokens.Default(), 0))
	if err != nil {
		log.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		log.Fatal(err)
	}
	stats, err := st.Stats(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d done, %d failed, %d tokens\n", run.Job().State, stats.Done, stats.Failed, stats.Usage.Total())

	var out strings.Builder
	if _, err := sluice.WriteOutput(ctx, st, job.ID, &out, nil); err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l struct {
			CustomID string `json:"custom_id"`
			Response struct {
				StatusCode int `json:"status_code"`
			} `json:"response"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			log.Fatal(err)
		}
		fmt.Println(l.CustomID, l.Response.StatusCode)
	}
	// Output:
	// completed: 3 done, 0 failed, 42 tokens
	// a 200
	// b 200
	// c 200
}

// Drain a run: nothing more is sent, the request in flight finishes and is recorded, and
// the rest stay pending for the next run of the job. A program's first Ctrl-C does this
// (sluice.WithDrain drains every run started under a context); Run.Stop drains and
// waits, Run.StopAndCancel cuts the requests in flight short.
func ExampleRun_Drain() {
	ctx := context.Background()
	st, job, done := exampleStore(ctx, "job_drain")
	defer done()

	sent, release := make(chan struct{}, 3), make(chan struct{})
	up := echo{hold: func() { sent <- struct{}{}; <-release }}
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: 1})
	if err != nil {
		log.Fatal(err)
	}
	run, err := eng.Start(ctx, job, input.NewSource(exampleInput(), tokens.Default(), 0))
	if err != nil {
		log.Fatal(err)
	}
	<-sent      // the first request is in flight
	run.Drain() // nothing more is sent
	close(release)
	err = run.Wait()
	stats, serr := st.Stats(ctx, job.ID)
	if serr != nil {
		log.Fatal(serr)
	}
	fmt.Println(errors.Is(err, sluice.ErrInterrupted), run.Job().State)
	fmt.Printf("%d done, %d pending\n", stats.Done, stats.Pending)
	// Output:
	// true interrupted
	// 1 done, 2 pending
}

// Cap what a job spends: before a request is sent it reserves its worst case (its prompt
// plus its max_tokens); dispatch stops before a reservation would pass the cap, and the
// run ends with ErrBudgetExhausted. Here each request reserves 9+10 tokens and uses 9+5.
func ExampleConfig_budget() {
	ctx := context.Background()
	st, job, done := exampleStore(ctx, "job_budget")
	defer done()

	eng, err := sluice.New(st, echo{}, sluice.Config{Concurrency: 1, Budget: sluice.Budget{MaxTokens: 40}})
	if err != nil {
		log.Fatal(err)
	}
	run, err := eng.Start(ctx, job, input.NewSource(exampleInput(), tokens.Default(), 0))
	if err != nil {
		log.Fatal(err)
	}
	err = run.Wait()
	stats, serr := st.Stats(ctx, job.ID)
	if serr != nil {
		log.Fatal(serr)
	}
	fmt.Println(errors.Is(err, sluice.ErrBudgetExhausted), run.Job().State)
	fmt.Printf("%d done, %d pending, %d tokens used of 40\n", stats.Done, stats.Pending, stats.Usage.Total())
	// Output:
	// true budget_exhausted
	// 2 done, 1 pending, 28 tokens used of 40
}
