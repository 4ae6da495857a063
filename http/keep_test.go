package http_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/openai/openai-go/v3"
)

// TestServeDeletedInputSurvivesRestart: the client deletes a running batch's input, then
// the server restarts. The batch still completes with every answer; the file is hidden
// from the client at once and its content removed once the batch has ended.
func TestServeDeletedInputSurvivesRestart(t *testing.T) {
	h := newHarness(t, slowSim(), 4)
	h.start()
	c := h.client(keyA)
	in := upload(t, c, inputLines(200))
	b := createBatch(t, c, in.ID, "24h")
	waitBatch(t, c, b.ID, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 20 })
	if del, err := c.Files.Delete(context.Background(), in.ID); err != nil || !del.Deleted {
		t.Fatalf("delete the input: %+v, %v", del, err)
	}
	if _, err := c.Files.Get(context.Background(), in.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("get the deleted input: %v, want 404", err)
	}
	if got := h.pageAll(keyA, "/v1/files?purpose=batch", 10); len(got) != 0 {
		t.Errorf("the deleted input is still listed: %v", got)
	}
	// A new batch over the deleted file is refused.
	if status, body := h.newBatch(keyA, in.ID, nil); status != http.StatusNotFound {
		t.Errorf("batch over a deleted file: %d %s, want 404", status, body)
	}
	h.stop()
	if got := h.sim.Stats().Requests; got >= 200 {
		t.Fatalf("the batch finished before the restart (%d requests)", got)
	}
	h.start()
	c = h.client(keyA)
	b = waitBatch(t, c, b.ID, terminal)
	if b.Status != openai.BatchStatusCompleted || b.RequestCounts.Completed != 200 {
		t.Fatalf("after a restart the batch ended %s with %+v, errors %+v", b.Status, b.RequestCounts, b.Errors)
	}
	out := download(t, c, b.OutputFileID)
	seen := map[string]int{}
	countIDs(t, seen, out)
	if len(out) != 200 || len(seen) != 200 {
		t.Errorf("output has %d lines over %d ids, want 200", len(out), len(seen))
	}
	if _, err := os.Stat(filepath.Join(h.dir, "files", in.ID+".jsonl")); !os.IsNotExist(err) {
		t.Errorf("the deleted input's content is still on disk after the batch ended: %v", err)
	}
}

// TestServeFailedBatchKeepsFinishedAnswers: a batch whose upstream is gone after a
// restart fails, but the answers it had are in its output file.
func TestServeFailedBatchKeepsFinishedAnswers(t *testing.T) {
	h := newHarness(t, slowSim(), 4)
	h.start()
	c := h.client(keyA)
	b := createBatch(t, c, upload(t, c, inputLines(200)).ID, "24h")
	waitBatch(t, c, b.ID, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 20 })
	h.stop()
	h.upName = "renamed" // the batch's upstream is no longer configured
	h.start()
	c = h.client(keyA)
	b = waitBatch(t, c, b.ID, terminal)
	if b.Status != openai.BatchStatusFailed || len(b.Errors.Data) != 1 || b.Errors.Data[0].Code != "upstream_error" {
		t.Fatalf("batch ended %s with errors %+v, want failed with upstream_error", b.Status, b.Errors)
	}
	out := download(t, c, b.OutputFileID)
	if len(out) < 20 || int64(len(out)) != b.RequestCounts.Completed {
		t.Errorf("failed batch delivers %d answers, counts %+v; want the 20 or more that finished", len(out), b.RequestCounts)
	}
	for _, l := range out {
		if l.Response == nil || l.Response.StatusCode != 200 {
			t.Errorf("output line %s is not an answer", l.Custom())
		}
	}
}
