package http_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice/sim"
)

func TestServeBatchCompletesThroughSDK(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 8)
	h.start()
	c := h.client(keyA)
	lines := inputLines(200)
	lines[7] = `{"custom_id":"bad-body","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":42}}`
	in := upload(t, c, lines)
	if in.Purpose != openai.FileObjectPurposeBatch || in.Bytes == 0 || in.Filename != "input.jsonl" {
		t.Fatalf("uploaded file: %+v", in)
	}
	b := createBatch(t, c, in.ID, "24h")
	if b.Status != openai.BatchStatusValidating {
		t.Errorf("new batch status %s, want validating", b.Status)
	}
	b = waitBatch(t, c, b.ID, terminal)
	if b.Status != openai.BatchStatusCompleted {
		t.Fatalf("batch ended %s: %+v", b.Status, b.Errors)
	}
	if b.RequestCounts.Total != 200 || b.RequestCounts.Completed != 199 || b.RequestCounts.Failed != 1 {
		t.Errorf("request counts %+v, want 200 total, 199 completed, 1 failed", b.RequestCounts)
	}
	if b.InProgressAt == 0 || b.FinalizingAt == 0 || b.CompletedAt == 0 || b.Model != "gpt-4o-mini" {
		t.Errorf("batch timestamps or model missing: %+v", b)
	}
	out := download(t, c, b.OutputFileID)
	errs := download(t, c, b.ErrorFileID)
	if len(out) != 199 || len(errs) != 1 {
		t.Fatalf("output has %d lines and errors %d, want 199 and 1", len(out), len(errs))
	}
	for _, l := range out {
		if l.Response == nil || l.Response.StatusCode != 200 || l.Error != nil {
			t.Errorf("output line %s is not a success: %+v", l.Custom(), l)
		}
	}
	if errs[0].Custom() != "bad-body" || errs[0].Error == nil || errs[0].Response != nil {
		t.Errorf("error line: %+v", errs[0])
	}
	seen := map[string]int{}
	countIDs(t, seen, out)
	countIDs(t, seen, errs)
	if len(seen) != 200 {
		t.Errorf("%d custom ids in the files, want 200", len(seen))
	}
	if got := h.sim.Stats().Requests; got != 199 {
		t.Errorf("the upstream got %d requests, want 199 (the invalid body is never sent)", got)
	}
	f, err := c.Files.Get(context.Background(), b.OutputFileID)
	if err != nil || f.Purpose != openai.FileObjectPurposeBatchOutput {
		t.Errorf("output file object: %+v, %v", f, err)
	}
	page, err := c.Batches.List(context.Background(), openai.BatchListParams{})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != b.ID {
		t.Errorf("list batches: %+v, %v", page, err)
	}
	del, err := c.Files.Delete(context.Background(), in.ID)
	if err != nil || !del.Deleted {
		t.Errorf("delete: %+v, %v", del, err)
	}
	if _, err := c.Files.Get(context.Background(), in.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("get a deleted file: %v, want 404", err)
	}
}

func statusOf(err error) int {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

func TestServeKeysIsolateObjects(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.start()
	a, b := h.client(keyA), h.client(keyB)
	in := upload(t, a, inputLines(3))
	batch := createBatch(t, a, in.ID, "24h")
	ctx := context.Background()

	_, err := b.Files.Get(ctx, in.ID)
	if statusOf(err) != http.StatusNotFound {
		t.Errorf("another key's file: %v, want 404", err)
	}
	if resp, err := b.Files.Content(ctx, in.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("another key's file content: %v, want 404", err)
	} else if resp != nil {
		resp.Body.Close()
	}
	if _, err := b.Batches.Get(ctx, batch.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("another key's batch: %v, want 404", err)
	}
	if _, err := b.Batches.Cancel(ctx, batch.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("cancel another key's batch: %v, want 404", err)
	}
	if _, err := b.Batches.New(ctx, openai.BatchNewParams{InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h}); statusOf(err) != http.StatusNotFound {
		t.Errorf("a batch of another key's file: %v, want 404", err)
	}
	if page, err := b.Batches.List(ctx, openai.BatchListParams{}); err != nil || len(page.Data) != 0 {
		t.Errorf("another key lists %d batches (%v), want 0", len(page.Data), err)
	}
	wrong := h.client("sk-wrong")
	if _, err := wrong.Files.List(ctx, openai.FileListParams{}); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("an unknown key: %v, want 401", err)
	}
	waitBatch(t, a, batch.ID, terminal)
}

func TestServeValidationFailsWithLineNumbers(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.models = []string{"gpt-4o-mini"}
	h.cfg.MaxLines = 6
	h.start()
	c := h.client(keyA)
	lines := inputLines(3)
	lines = append(lines,
		`{"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}`, // 4: duplicate
		`not json`, // 5
		`{"custom_id":"x","method":"POST","url":"/v1/embeddings","body":{"model":"gpt-4o-mini","input":"a"}}`,  // 6: url
		`{"custom_id":"y","method":"POST","url":"/v1/chat/completions","body":{"model":"nope","messages":[]}}`, // 7: over the limit
	)
	b := createBatch(t, c, upload(t, c, lines).ID, "24h")
	b = waitBatch(t, c, b.ID, terminal)
	if b.Status != openai.BatchStatusFailed || b.FailedAt == 0 {
		t.Fatalf("batch ended %s, want failed", b.Status)
	}
	want := map[int64]string{4: "duplicate_custom_id", 5: "invalid_request", 6: "invalid_url", 7: "too_many_requests"}
	got := map[int64]string{}
	for _, e := range b.Errors.Data {
		got[e.Line] = e.Code
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("errors by line %v, want %v", got, want)
	}

	lines = append(inputLines(2), `{"custom_id":"z","method":"POST","url":"/v1/chat/completions","body":{"model":"llama-3","messages":[]}}`)
	b = waitBatch(t, c, createBatch(t, c, upload(t, c, lines).ID, "24h").ID, terminal)
	if b.Status != openai.BatchStatusFailed || len(b.Errors.Data) != 1 || b.Errors.Data[0].Line != 3 || b.Errors.Data[0].Code != "model_not_found" {
		t.Errorf("a model with no upstream: %s %+v", b.Status, b.Errors.Data)
	}
	if h.sim.Stats().Requests != 0 {
		t.Errorf("failed batches sent %d requests", h.sim.Stats().Requests)
	}
}

// slowSim answers each request after 20-30 ms.
func slowSim() sim.Config { return sim.Config{Seed: 1, TTFT: 20 * time.Millisecond, Jitter: 0.2} }

func TestServeCancelKeepsFinishedResults(t *testing.T) {
	h := newHarness(t, slowSim(), 2)
	h.start()
	c := h.client(keyA)
	b := createBatch(t, c, upload(t, c, inputLines(300)).ID, "24h")
	waitBatch(t, c, b.ID, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 5 })
	cb, err := c.Batches.Cancel(context.Background(), b.ID)
	if err != nil || (cb.Status != openai.BatchStatusCancelling && cb.Status != openai.BatchStatusCancelled) {
		t.Fatalf("cancel: %v %v", cb, err)
	}
	b = waitBatch(t, c, b.ID, terminal)
	if b.Status != openai.BatchStatusCancelled || b.CancellingAt == 0 || b.CancelledAt == 0 {
		t.Fatalf("batch ended %s, want cancelled", b.Status)
	}
	out := download(t, c, b.OutputFileID)
	n := int64(len(out))
	if n < 5 || n >= 300 || n != b.RequestCounts.Completed {
		t.Errorf("cancelled batch kept %d results, counts %+v", n, b.RequestCounts)
	}
	countIDs(t, map[string]int{}, out)
	if got := h.sim.Stats().Requests; got != n {
		t.Errorf("the upstream got %d requests, the output has %d", got, n)
	}
	if _, err := c.Batches.Cancel(context.Background(), b.ID); statusOf(err) != http.StatusConflict {
		t.Errorf("cancel a cancelled batch: %v, want 409", err)
	}
}

func TestServeExpiryWritesBatchExpiredLines(t *testing.T) {
	h := newHarness(t, slowSim(), 2)
	h.cfg.AnyCompletionWindow = true
	h.start()
	c := h.client(keyA)
	b := createBatch(t, c, upload(t, c, inputLines(400)).ID, "3s") // expires_at is in whole seconds: 2-3 s of running
	b = waitBatch(t, c, b.ID, terminal)
	if b.Status != openai.BatchStatusExpired || b.ExpiredAt == 0 {
		t.Fatalf("batch ended %s, want expired", b.Status)
	}
	out, errs := download(t, c, b.OutputFileID), download(t, c, b.ErrorFileID)
	seen := map[string]int{}
	countIDs(t, seen, out)
	countIDs(t, seen, errs)
	if len(seen) != 400 || len(out) == 0 {
		t.Fatalf("expired batch: %d results and %d errors over %d ids, want every id of 400", len(out), len(errs), len(seen))
	}
	for _, e := range errs {
		if e.Error == nil || e.Error.Code != "batch_expired" || e.Response != nil {
			t.Fatalf("error line %+v, want batch_expired", e)
		}
	}
	if b.RequestCounts.Completed != int64(len(out)) || b.RequestCounts.Failed != int64(len(errs)) {
		t.Errorf("counts %+v for %d results and %d errors", b.RequestCounts, len(out), len(errs))
	}
}

func TestServeRejectsOtherWindowsByDefault(t *testing.T) {
	h := newHarness(t, sim.Config{}, 1)
	h.start()
	c := h.client(keyA)
	_, err := c.Batches.New(context.Background(), openai.BatchNewParams{InputFileID: upload(t, c, inputLines(1)).ID,
		Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: "1h"})
	if statusOf(err) != http.StatusBadRequest {
		t.Errorf("completion_window 1h: %v, want 400", err)
	}
}

func TestServeRestartResumesBatch(t *testing.T) {
	h := newHarness(t, slowSim(), 4)
	h.start()
	c := h.client(keyA)
	b := createBatch(t, c, upload(t, c, inputLines(200)).ID, "24h")
	waitBatch(t, c, b.ID, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 20 })
	h.stop()
	if got := h.sim.Stats().Requests; got >= 200 {
		t.Fatalf("the batch finished before the restart (%d requests)", got)
	}
	h.start()
	c = h.client(keyA)
	b = waitBatch(t, c, b.ID, terminal)
	if b.Status != openai.BatchStatusCompleted || b.RequestCounts.Completed != 200 {
		t.Fatalf("after a restart the batch ended %s with %+v", b.Status, b.RequestCounts)
	}
	out := download(t, c, b.OutputFileID)
	seen := map[string]int{}
	countIDs(t, seen, out)
	if len(out) != 200 || len(seen) != 200 {
		t.Errorf("output has %d lines over %d ids, want 200", len(out), len(seen))
	}
	if got := h.sim.Stats().Requests; got != 200 {
		t.Errorf("the upstream got %d requests over both runs, want 200: none sent twice", got)
	}
}

// TestServeFailsOverToAnotherUpstream: the upstream a batch was routed to rejects the
// key; the batch moves to another upstream that serves its model and completes there,
// every request once.
func TestServeFailsOverToAnotherUpstream(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.broken = sim.New(sim.Config{APIKey: "sk-not-ours"})
	t.Cleanup(h.broken.Close)
	h.start()
	c := h.client(keyA)
	in := upload(t, c, inputLines(20))
	b, err := c.Batches.New(context.Background(), openai.BatchNewParams{InputFileID: in.ID,
		Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	b = waitBatch(t, c, b.ID, terminal)
	if b.Status != openai.BatchStatusCompleted || b.RequestCounts.Completed != 20 {
		t.Fatalf("batch ended %s with %+v, want completed on the other upstream", b.Status, b.RequestCounts)
	}
	if st := h.broken.Stats(); st.Unauthorized == 0 || st.Requests > 8 {
		t.Errorf("the broken upstream saw %d requests (%d rejected): want a few, all rejected", st.Requests, st.Unauthorized)
	}
	if got := h.sim.Stats().Requests; got != 20 {
		t.Errorf("the good upstream got %d requests, want 20", got)
	}
	seen := map[string]int{}
	countIDs(t, seen, download(t, c, b.OutputFileID))
	if len(seen) != 20 {
		t.Errorf("%d ids in the output, want 20", len(seen))
	}
}

// TestServeCancelWhileValidating: a batch cancelled before its run started (while it is
// validated) ends cancelled, with nothing sent.
func TestServeCancelWhileValidating(t *testing.T) {
	for range 5 { // the cancel races validation: run it a few times to hit both orders
		h := newHarness(t, slowSim(), 4)
		h.start()
		c := h.client(keyA)
		in := upload(t, c, inputLines(300))
		b, err := c.Batches.New(context.Background(), openai.BatchNewParams{InputFileID: in.ID,
			Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Batches.Cancel(context.Background(), b.ID); err != nil {
			t.Fatal(err)
		}
		if b = waitBatch(t, c, b.ID, terminal); b.Status != openai.BatchStatusCancelled {
			t.Fatalf("batch ended %s, want cancelled", b.Status)
		}
		h.stop()
	}
}
