package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
)

// benchRows is how many requests one benchmark iteration moves through the ledger.
const benchRows = 100_000

// The engine's batch sizes.
const (
	ingestBatch = 1000
	claimBatch  = 256
	flushBatch  = 512
)

func benchStore(b *testing.B) *sqlite.Store {
	b.Helper()
	return benchStoreAt(b, filepath.Join(b.TempDir(), "bench.db"))
}

func benchStoreAt(b *testing.B, path string) *sqlite.Store {
	b.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// benchJob creates a job holding n pending requests of a realistic size.
func benchJob(b *testing.B, st *sqlite.Store, id string, n int) {
	b.Helper()
	ctx := context.Background()
	if err := st.CreateJob(ctx, &sluice.Job{ID: id, State: sluice.JobRunning, Input: "bench.jsonl"}); err != nil {
		b.Fatal(err)
	}
	batch := make([]sluice.NewRequest, 0, ingestBatch)
	for line := 1; line <= n; line++ {
		batch = append(batch, benchRequest(line))
		if len(batch) == ingestBatch || line == n {
			if err := st.AddRequests(ctx, id, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

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

// benchRequests is lines 1 to n of benchRequest.
func benchRequests(n int) []sluice.NewRequest {
	reqs := make([]sluice.NewRequest, n)
	for i := range reqs {
		reqs[i] = benchRequest(i + 1)
	}
	return reqs
}

// benchAnswer is a chat completion of about 600 bytes.
var benchAnswer = json.RawMessage(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion",` +
	`"created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",` +
	`"content":"The document argues that batching requests lowers cost without hurting quality. It supports the ` +
	`claim with a comparison of two months of traffic and a blind review of answers. It concludes that the ` +
	`saving holds across every model it tried.","refusal":null,"annotations":[]},"logprobs":null,` +
	`"finish_reason":"stop"}],"usage":{"prompt_tokens":48,"completion_tokens":52,"total_tokens":100,` +
	`"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0}},"service_tier":"default"}`)

// BenchmarkAddRequests measures ingest: requests added in transactions of 1000 lines.
func BenchmarkAddRequests(b *testing.B) {
	st := benchStore(b)
	reqs := benchRequests(benchRows)
	rows := 0
	for i := 0; b.Loop(); i++ {
		ingestJob(b, st, fmt.Sprintf("job-%d", i), reqs)
		rows += len(reqs)
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// ingestJob creates a job of reqs, added ingestBatch lines at a time.
func ingestJob(b *testing.B, st *sqlite.Store, id string, reqs []sluice.NewRequest) {
	b.Helper()
	ctx := context.Background()
	if err := st.CreateJob(ctx, &sluice.Job{ID: id, State: sluice.JobRunning}); err != nil {
		b.Fatal(err)
	}
	for j := 0; j < len(reqs); j += ingestBatch {
		if err := st.AddRequests(ctx, id, reqs[j:min(len(reqs), j+ingestBatch)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimComplete measures dispatch: requests claimed 256 at a time and their
// answers recorded 512 at a time, as the engine does.
func BenchmarkClaimComplete(b *testing.B) {
	st := benchStore(b)
	done := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		id := fmt.Sprintf("job-%d", i)
		benchJob(b, st, id, benchRows)
		b.StartTimer()
		drainJob(b, st, id, claimBatch, flushBatch)
		done += benchRows
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "requests/s")
}

// drainJob claims the job's requests claim at a time and records their answers complete
// at a time, until none is left.
func drainJob(b *testing.B, st *sqlite.Store, id string, claim, complete int) {
	b.Helper()
	ctx := context.Background()
	outcomes := make([]sluice.Outcome, 0, complete)
	for {
		items, err := st.Claim(ctx, sluice.ClaimParams{JobID: id, Owner: "bench", Max: claim, Lease: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range items {
			outcomes = append(outcomes, sluice.Outcome{Line: it.Line, State: sluice.StateDone, Attempts: 1,
				StatusCode: 200, RequestID: "req_" + it.Request.CustomID, Body: benchAnswer,
				Usage:   sluice.Usage{PromptTokens: 48, CompletionTokens: 52},
				Latency: time.Duration(it.Line%1000) * time.Millisecond})
			if len(outcomes) == complete {
				if err := st.Complete(ctx, id, "bench", outcomes); err != nil {
					b.Fatal(err)
				}
				outcomes = outcomes[:0]
			}
		}
		if len(items) == 0 {
			break
		}
	}
	if err := st.Complete(ctx, id, "bench", outcomes); err != nil {
		b.Fatal(err)
	}
}

// The ledger's batch sizes in `sluice bench wire` (zero latency, concurrency 64): the
// engine claims as many lines as its concurrency, and its ledger writer commits about 17
// outcomes at a time (5,984 commits for 100,000 requests).
const (
	wireRows     = 20_000
	wireClaim    = 64
	wireComplete = 16
)

// BenchmarkLedgerWire measures the ledger's whole cost per request at the batch sizes of
// bench wire: ingest in batches of 1000, claims of 64, completions of 16 (the others
// measure each at the engine's largest batches). It reports the process's CPU time per
// request besides the wall time.
func BenchmarkLedgerWire(b *testing.B) {
	st := benchStore(b)
	reqs := benchRequests(wireRows)
	done := 0
	cpu := cpuTime()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("job-%d", i)
		ingestJob(b, st, id, reqs)
		drainJob(b, st, id, wireClaim, wireComplete)
		done += wireRows
	}
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(done), "cpu-µs/request")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// finishedJob creates a job of n requests that are all done.
func finishedJob(b *testing.B, st *sqlite.Store, id string, n int) {
	b.Helper()
	ctx := context.Background()
	benchJob(b, st, id, n)
	for {
		items, err := st.Claim(ctx, sluice.ClaimParams{JobID: id, Owner: "bench", Max: flushBatch, Lease: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		if len(items) == 0 {
			return
		}
		outcomes := make([]sluice.Outcome, len(items))
		for i, it := range items {
			outcomes[i] = sluice.Outcome{Line: it.Line, State: sluice.StateDone, Attempts: 1, StatusCode: 200,
				Body: benchAnswer, Usage: sluice.Usage{PromptTokens: 48, CompletionTokens: 52},
				Latency: time.Duration(it.Line%1000) * time.Millisecond}
		}
		if err := st.Complete(ctx, id, "bench", outcomes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStats measures Stats on a finished job of 100,000 requests.
func BenchmarkStats(b *testing.B) {
	st := benchStore(b)
	finishedJob(b, st, "job", benchRows)
	for b.Loop() {
		s, err := st.Stats(context.Background(), "job")
		if err != nil {
			b.Fatal(err)
		}
		if s.Done != benchRows {
			b.Fatalf("done = %d", s.Done)
		}
	}
}

// BenchmarkResults measures reading a finished job's results, as writing its output does.
func BenchmarkResults(b *testing.B) {
	st := benchStore(b)
	finishedJob(b, st, "job", benchRows)
	rows := 0
	for b.Loop() {
		if err := st.Results(context.Background(), "job", 0, 0, func(*sluice.Result) error {
			rows++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// walFrameSize is the size of a frame of the WAL at the default page size: a 24-byte
// header and a 4096-byte page.
const walFrameSize = 24 + 4096

// BenchmarkWALFrames counts the pages the ledger writes per request, the largest part of
// its CPU (each is a frame appended to the WAL by two writes, and later copied into the
// database by a checkpoint): a job of wireRows requests claimed and completed n at a
// time. Checkpoints are off, so that the WAL holds every frame; the counts do not depend
// on the machine or its load.
func BenchmarkWALFrames(b *testing.B) {
	for _, n := range []int{8, 16, 32, 64} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				f := countFrames(b, n)
				b.ReportMetric(f.ingest, "ingest-frames/request")
				b.ReportMetric(f.claim, "frames/claim")
				b.ReportMetric(f.complete, "frames/completion")
				b.ReportMetric(f.perRequest, "frames/request")
			}
		})
	}
}

// frameCounts are the WAL frames a job's requests took: per request for ingest, per
// transaction of claims and of completions, and per request for both.
type frameCounts struct {
	ingest, claim, complete, perRequest float64
}

// countFrames ingests a job of wireRows requests into a fresh ledger, then claims and
// completes them batch at a time, counting the WAL's frames.
func countFrames(b *testing.B, batch int) frameCounts {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "frames.db")
	st := benchStoreAt(b, path)
	if err := sqlite.StopCheckpoints(ctx, st); err != nil {
		b.Fatal(err)
	}
	frames := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			b.Fatal(err)
		}
		return (fi.Size() - 32) / walFrameSize // 32: the WAL's header
	}
	start := frames()
	ingestJob(b, st, "job", benchRequests(wireRows))
	ingested := frames()
	var claimFrames, completeFrames, claims, completes int64
	for {
		before := frames()
		items, err := st.Claim(ctx, sluice.ClaimParams{JobID: "job", Owner: "bench", Max: batch, Lease: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		claimed := frames()
		claimFrames += claimed - before
		claims++
		outcomes := make([]sluice.Outcome, len(items))
		for i, it := range items {
			outcomes[i] = sluice.Outcome{Line: it.Line, State: sluice.StateDone, Attempts: 1, StatusCode: 200,
				RequestID: "req_" + it.Request.CustomID, Body: benchAnswer,
				Usage: sluice.Usage{PromptTokens: 48, CompletionTokens: 52}, Latency: time.Millisecond}
		}
		if err := st.Complete(ctx, "job", "bench", outcomes); err != nil {
			b.Fatal(err)
		}
		completeFrames += frames() - claimed
		completes++
	}
	return frameCounts{
		ingest:     float64(ingested-start) / wireRows,
		claim:      float64(claimFrames) / float64(claims),
		complete:   float64(completeFrames) / float64(completes),
		perRequest: float64(claimFrames+completeFrames) / wireRows,
	}
}
