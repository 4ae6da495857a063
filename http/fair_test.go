package http_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice/sim"
)

// TestServeSchedulesFairlyBetweenKeys: while key A runs six batches, key B's one small
// batch gets about half the upstream's slots, not a seventh of them.
func TestServeSchedulesFairlyBetweenKeys(t *testing.T) {
	const bLines = 40
	var aSent, bSent, aAtFirstB, aAtLastB atomic.Int64
	h := newHarness(t, sim.Config{Seed: 1, TTFT: 20 * time.Millisecond}, 4)
	h.wrap = func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte("from-b")) {
				switch bSent.Add(1) {
				case 1:
					aAtFirstB.Store(aSent.Load())
				case bLines:
					aAtLastB.Store(aSent.Load())
				}
			} else {
				aSent.Add(1)
			}
			return next.RoundTrip(r)
		})
	}
	h.start()
	ca, cb := h.client(keyA), h.client(keyB)
	var aBatches []string
	for range 6 {
		aBatches = append(aBatches, createBatch(t, ca, upload(t, ca, inputLines(150)).ID, "24h").ID)
	}
	for _, id := range aBatches {
		waitBatch(t, ca, id, func(b *openai.Batch) bool { return b.RequestCounts.Completed > 0 || terminal(b) })
	}
	lines := make([]string, bLines)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"custom_id":"b-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"from-b %d"}],"max_tokens":5}}`, i, i)
	}
	b := waitBatch(t, cb, createBatch(t, cb, upload(t, cb, lines).ID, "24h").ID, terminal)
	if b.Status != openai.BatchStatusCompleted {
		t.Fatalf("B's batch ended %s", b.Status)
	}
	for _, id := range aBatches {
		if a, _ := ca.Batches.Get(t.Context(), id); terminal(a) {
			t.Fatalf("A's batch %s ended before B's: the test measured nothing", id)
		}
	}
	during := aAtLastB.Load() - aAtFirstB.Load()
	t.Logf("while B sent its %d requests, A sent %d", bLines, during)
	if during > 2*bLines {
		t.Errorf("while B sent its %d requests, A's six batches sent %d: B got %.0f%% of the slots, want about half",
			bLines, during, 100*float64(bLines)/float64(bLines+during))
	}
}
