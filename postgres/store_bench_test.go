package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/postgres"
)

// benchRows is how many requests one benchmark iteration moves through the ledger.
const benchRows = 50_000

// The engine's batch sizes.
const (
	ingestBatch = 1000
	claimBatch  = 256
	flushBatch  = 512
)

// benchRequest is a chat request of about 300 bytes.
func benchRequest(line int) sluice.NewRequest {
	id := fmt.Sprintf("request-%08d", line)
	body := fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":256,"messages":[{"role":"system","content":"You are a careful `+
		`assistant that answers in one short paragraph."},{"role":"user","content":"Summarise document %s in `+
		`three sentences, naming its main claim and the evidence offered for it."}]}`, id)
	return sluice.NewRequest{
		Line:     int64(line),
		Request:  sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions, Body: json.RawMessage(body)},
		Estimate: sluice.Estimate{Model: "gpt-4o-mini", PromptTokens: 48, MaxOutputTokens: 256},
	}
}

// benchAnswer is a chat completion of about 600 bytes.
var benchAnswer = json.RawMessage(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion",` +
	`"created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",` +
	`"content":"The document argues that batching requests lowers cost without hurting quality. It supports the ` +
	`claim with a comparison of two months of traffic and a blind review of answers. It concludes that the ` +
	`saving holds across every model it tried.","refusal":null,"annotations":[]},"logprobs":null,` +
	`"finish_reason":"stop"}],"usage":{"prompt_tokens":48,"completion_tokens":52,"total_tokens":100,` +
	`"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0}},"service_tier":"default"}`)

// addJob creates job id and adds reqs to it, ingestBatch lines per call.
func addJob(b testing.TB, st *postgres.Store, id string, reqs []sluice.NewRequest) {
	b.Helper()
	ctx := context.Background()
	if err := st.CreateJob(ctx, &sluice.Job{ID: id, State: sluice.JobRunning, Input: "bench.jsonl"}); err != nil {
		b.Fatal(err)
	}
	for j := 0; j < len(reqs); j += ingestBatch {
		if err := st.AddRequests(ctx, id, reqs[j:min(j+ingestBatch, len(reqs))]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRequests() []sluice.NewRequest {
	reqs := make([]sluice.NewRequest, benchRows)
	for i := range reqs {
		reqs[i] = benchRequest(i + 1)
	}
	return reqs
}

// BenchmarkAddRequests measures ingest: requests added 1,000 lines a call (one
// transaction, COPY), as the engine's ingester does.
func BenchmarkAddRequests(b *testing.B) {
	st := openStore(b)
	reqs := benchRequests()
	rows := 0
	for i := 0; b.Loop(); i++ {
		addJob(b, st, fmt.Sprintf("job-%d", i), reqs)
		rows += len(reqs)
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkClaimComplete measures dispatch with 1 and 4 owners working one job at once:
// each claims 256 requests at a time and records their answers 512 at a time, as the
// engine does, with nothing between the claim and the answer (zero upstream latency).
func BenchmarkClaimComplete(b *testing.B) {
	for _, owners := range []int{1, 4} {
		b.Run(fmt.Sprintf("owners=%d", owners), func(b *testing.B) {
			st := openStore(b)
			reqs := benchRequests()
			done := 0
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				id := fmt.Sprintf("job-%d", i)
				addJob(b, st, id, reqs)
				b.StartTimer()
				var wg sync.WaitGroup
				errs := make([]error, owners)
				for w := range owners {
					wg.Go(func() { errs[w] = work(st, id, fmt.Sprintf("owner-%d", w)) })
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				done += benchRows
			}
			b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "requests/s")
		})
	}
}

// work claims and answers the job's requests as owner until none is left.
func work(st *postgres.Store, id, owner string) error {
	ctx := context.Background()
	outcomes := make([]sluice.Outcome, 0, flushBatch)
	for {
		items, err := st.Claim(ctx, sluice.ClaimParams{JobID: id, Owner: owner, Max: claimBatch, Lease: time.Minute})
		if err != nil {
			return err
		}
		for _, it := range items {
			outcomes = append(outcomes, sluice.Outcome{Line: it.Line, State: sluice.StateDone, Attempts: 1,
				StatusCode: 200, RequestID: "req_" + it.Request.CustomID, Body: benchAnswer,
				Usage:   sluice.Usage{PromptTokens: 48, CompletionTokens: 52},
				Latency: time.Duration(it.Line%1000) * time.Millisecond})
			if len(outcomes) == flushBatch {
				if err := st.Complete(ctx, id, owner, outcomes); err != nil {
					return err
				}
				outcomes = outcomes[:0]
			}
		}
		if len(items) == 0 {
			return st.Complete(ctx, id, owner, outcomes)
		}
	}
}
