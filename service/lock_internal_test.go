package service

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
)

// noUpstream is an upstream the tests never send to.
type noUpstream struct{}

func (noUpstream) Do(context.Context, *sluice.Request) (*sluice.Response, error) {
	return nil, errors.New("no upstream")
}
func (noUpstream) BaseURL() string { return "none" }

// gatedStore holds a SaveObject of one object until its gate is closed, and says when
// one is held.
type gatedStore struct {
	Store
	mu    sync.Mutex
	gates map[string]chan struct{} // id → closed to let its saves through
	held  chan string              // told the id of a save that waits at its gate
}

func (g *gatedStore) gate(id string) (open func()) {
	c := make(chan struct{})
	g.mu.Lock()
	g.gates[id] = c
	g.mu.Unlock()
	return func() { close(c) }
}

// wait holds a write of object id while its gate is set and closed.
func (g *gatedStore) wait(id string) {
	g.mu.Lock()
	c := g.gates[id]
	g.mu.Unlock()
	if c != nil {
		g.held <- id
		<-c
	}
}

func (g *gatedStore) SaveObject(ctx context.Context, kind, id, tenant, status string, doc []byte) error {
	g.wait(id)
	return g.Store.SaveObject(ctx, kind, id, tenant, status, doc)
}

func (g *gatedStore) SwapObject(ctx context.Context, kind, id, was, status string, doc []byte) (bool, error) {
	g.wait(id)
	return g.Store.SwapObject(ctx, kind, id, was, status, doc)
}

// newLockService is a Service over a gated SQLite store, with no batch running.
func newLockService(t testing.TB) (*Service, *gatedStore) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &gatedStore{Store: st, gates: map[string]chan struct{}{}, held: make(chan string, 1)}
	eng, err := sluice.New(g, noUpstream{}, sluice.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Config{Store: g, FilesDir: filepath.Join(dir, "files"),
		Routes: []Route{{Name: "none", Engine: eng}}, KeyHashes: []string{HashKey("k")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, g
}

// storeBatch stores a batch that no goroutine runs, as an in-progress one.
func storeBatch(t testing.TB, s *Service, id string) {
	t.Helper()
	rec := &batchRecord{Batch: sluice.Batch{ID: id, Object: "batch", Status: sluice.BatchInProgress, CreatedAt: s.now()},
		Tenant: HashKey("k")}
	if err := s.saveBatch(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// TestBatchesUpdateIndependently: while one batch's update waits on its store write,
// another batch's update and a cancel of it go through. With one lock around every
// batch write (before), they waited for the first.
func TestBatchesUpdateIndependently(t *testing.T) {
	s, g := newLockService(t)
	storeBatch(t, s, "batch_a")
	storeBatch(t, s, "batch_b")

	open := g.gate("batch_a")
	aDone := make(chan error, 1)
	go func() {
		_, err := s.update("batch_a", func(r *batchRecord) { r.RequestCounts.Total = 1 })
		aDone <- err
	}()
	if id := <-g.held; id != "batch_a" {
		t.Fatalf("held %s", id)
	}

	bDone := make(chan error, 1)
	go func() {
		_, err := s.update("batch_b", func(r *batchRecord) { r.RequestCounts.Total = 2 })
		if err == nil {
			_, err = s.CancelBatch(context.Background(), HashKey("k"), "batch_b")
		}
		bDone <- err
	}()
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // a failure, not a wait: b never needs a's lock
		open()
		t.Fatal("batch_b's update waited for batch_a's store write")
	}
	open()
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	b, err := s.batch(context.Background(), "batch_b", "")
	if err != nil {
		t.Fatal(err)
	}
	if b.RequestCounts.Total != 2 || b.Status != sluice.BatchCancelling {
		t.Errorf("batch_b: total %d, status %s; want 2, cancelling", b.RequestCounts.Total, b.Status)
	}
}

// TestBatchUpdatesLoseNothing: concurrent read-modify-writes of one batch, and a cancel
// among them, each see the one before: none is lost.
func TestBatchUpdatesLoseNothing(t *testing.T) {
	s, _ := newLockService(t)
	storeBatch(t, s, "batch_a")
	storeBatch(t, s, "batch_b")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*n+1)
	for i := range 2 * n {
		id := []string{"batch_a", "batch_b"}[i%2]
		wg.Go(func() {
			_, err := s.update(id, func(r *batchRecord) { r.RequestCounts.Completed++ })
			errs <- err
		})
	}
	wg.Go(func() {
		_, err := s.CancelBatch(context.Background(), HashKey("k"), "batch_a")
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"batch_a", "batch_b"} {
		rec, err := s.batch(context.Background(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		if rec.RequestCounts.Completed != n {
			t.Errorf("%s: %d updates kept, want %d", id, rec.RequestCounts.Completed, n)
		}
		if id == "batch_a" && rec.Status != sluice.BatchCancelling {
			t.Errorf("%s: the cancel was lost: status %s", id, rec.Status)
		}
	}
	if len(s.batchLocks.locks) != 0 {
		t.Errorf("%d batch locks left behind", len(s.batchLocks.locks))
	}
}

// TestUpdateKeepsAnotherServersCancel: a cancel another server stores while this one's
// update of the batch is between its read and its write is not undone by the write.
func TestUpdateKeepsAnotherServersCancel(t *testing.T) {
	s, g := newLockService(t)
	storeBatch(t, s, "batch_a")
	open := g.gate("batch_a")
	done := make(chan error, 1)
	go func() {
		_, err := s.update("batch_a", func(r *batchRecord) { r.RequestCounts.Total = 7 })
		done <- err
	}()
	<-g.held // the update has read the batch in_progress
	rec, err := s.batch(context.Background(), "batch_a", "")
	if err != nil {
		t.Fatal(err)
	}
	rec.Status = sluice.BatchCancelling // another server's cancel, past this one's locks
	doc, _ := json.Marshal(rec)
	if err := g.Store.SaveObject(context.Background(), kindBatch, rec.ID, rec.Tenant, string(rec.Status), doc); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	delete(g.gates, "batch_a")
	g.mu.Unlock()
	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := s.batch(context.Background(), "batch_a", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != sluice.BatchCancelling || got.RequestCounts.Total != 7 {
		t.Errorf("after the update: status %s, total %d; want cancelling, 7", got.Status, got.RequestCounts.Total)
	}
}
