package batch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
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

// TestIngestBoundsBytes: long lines go to the ledger a few megabytes at a time.
func TestIngestBoundsBytes(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ss := &sizeStore{Store: st}
	job := &sluice.Job{ID: "j", State: sluice.JobRunning, Input: "in.jsonl", Options: []byte(`{}`)}
	if err := st.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	prompt := strings.Repeat("x", 1<<20)
	for i := range 40 {
		fmt.Fprintf(&in, `{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"%s"}]}}`+"\n", i, prompt)
	}
	if err := batch.Ingest(ctx, ss, job, ingest.NewSource(strings.NewReader(in.String()), tokens.Default()), nil); err != nil {
		t.Fatal(err)
	}
	if ss.largest > 16<<20 {
		t.Errorf("one AddRequests call held %d MB of bodies", ss.largest>>20)
	}
}
