package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

// CacheStore is the answer cache of pipelines (pipeline.Cache holds the same methods).
// The cache scenarios run on stores that implement it and are skipped on others.
type CacheStore interface {
	GetCached(ctx context.Context, keys []string) (map[string][]byte, error)
	PutCached(ctx context.Context, entries map[string][]byte) error
}

var cacheScenarios = []scenario{
	{"CacheRoundTrip", testCacheRoundTrip},
}

func testCacheRoundTrip(t *testing.T, st sluice.Store) {
	cs, ok := st.(CacheStore)
	if !ok {
		t.Skipf("%T does not implement storetest.CacheStore", st)
	}
	ctx := t.Context()
	get := func(keys ...string) map[string][]byte {
		t.Helper()
		got, err := cs.GetCached(ctx, keys)
		if err != nil {
			t.Fatalf("get cached: %v", err)
		}
		return got
	}
	if got := get("a", "b"); len(got) != 0 {
		t.Errorf("an empty cache holds %v", got)
	}
	if got := get(); got == nil || len(got) != 0 {
		t.Errorf("GetCached of no keys = %v, want an empty map", got)
	}
	if err := cs.PutCached(ctx, nil); err != nil {
		t.Errorf("PutCached of nothing: %v", err)
	}
	// More keys than one query of a store may bind.
	entries := map[string][]byte{}
	var keys []string
	for i := range 1200 {
		k := fmt.Sprintf("%064x", i)
		entries[k] = []byte(fmt.Sprintf(`{"answer":%d}`, i))
		keys = append(keys, k)
	}
	if err := cs.PutCached(ctx, entries); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(entries, get(append(keys, "missing")...)); diff != "" {
		t.Errorf("cached answers (-want +got):\n%s", diff)
	}
	// A new answer under a key replaces the old one.
	if err := cs.PutCached(ctx, map[string][]byte{keys[0]: []byte(`{"answer":"new"}`)}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{keys[0]: []byte(`{"answer":"new"}`), keys[1]: entries[keys[1]]}
	if diff := cmp.Diff(want, get(keys[0], keys[1], "missing")); diff != "" {
		t.Errorf("after replacing one (-want +got):\n%s", diff)
	}
}
