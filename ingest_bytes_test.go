package sluice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice"
)

// sizeStore records the largest AddRequests call, in bytes of bodies.
type sizeStore struct {
	sluice.Store
	mu      sync.Mutex
	largest int
}

func (s *sizeStore) AddRequests(ctx context.Context, jobID string, reqs []sluice.NewRequest) error {
	n := 0
	for _, r := range reqs {
		n += len(r.Request.Body)
	}
	s.mu.Lock()
	s.largest = max(s.largest, n)
	s.mu.Unlock()
	return s.Store.AddRequests(ctx, jobID, reqs)
}

// TestIngestBoundsBytes: long lines are written to the ledger in transactions of a few
// megabytes, not a thousand lines at a time whatever their size.
func TestIngestBoundsBytes(t *testing.T) {
	st := &sizeStore{Store: newStore(t)}
	job := newJob(t, st)
	src := &sliceSource{}
	prompt := strings.Repeat("x", 1<<20)
	for i := range 100 {
		id := fmt.Sprintf("req-%04d", i+1)
		src.lines = append(src.lines, sluice.NewRequest{Line: int64(i + 1),
			Request: sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions,
				Body: json.RawMessage(`{"model":"m","messages":[{"role":"user","content":"` + prompt + `"}]}`)},
			Estimate: sluice.Estimate{Model: "m", PromptTokens: 10, MaxOutputTokens: 5}})
	}
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) }}
	if err := runJob(t, st, up, fastConfig(), job, src); err != nil {
		t.Fatal(err)
	}
	if st.largest > 16<<20 {
		t.Errorf("one AddRequests call held %d MB of bodies", st.largest>>20)
	}
}
