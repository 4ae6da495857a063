package service

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// slowStore makes every object write take a while, as a store across a network does.
type slowStore struct {
	Store
	delay time.Duration
}

func (s slowStore) SaveObject(ctx context.Context, kind, id, tenant, status string, doc []byte) error {
	time.Sleep(s.delay) // the store's round trip
	return s.Store.SaveObject(ctx, kind, id, tenant, status, doc)
}

func (s slowStore) SwapObject(ctx context.Context, kind, id, was, status string, doc []byte) (bool, error) {
	time.Sleep(s.delay) // the store's round trip
	return s.Store.SwapObject(ctx, kind, id, was, status, doc)
}

// BenchmarkUpdateManyBatches: updates of 16 batches at once, over a store whose writes
// take 1 ms. Under one lock for every batch they take turns (about 1 ms each); under a
// lock per batch they overlap.
func BenchmarkUpdateManyBatches(b *testing.B) {
	s, g := newLockService(b)
	s.cfg.Store = slowStore{Store: g, delay: time.Millisecond}
	const batches = 16
	for i := range batches {
		storeBatch(b, s, fmt.Sprintf("batch_%d", i))
	}
	var next atomic.Int64
	b.SetParallelism(batches) // goroutines per CPU: enough that every batch is busy
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("batch_%d", next.Add(1)%batches)
		for pb.Next() {
			if _, err := s.update(id, func(r *batchRecord) { r.RequestCounts.Completed++ }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
