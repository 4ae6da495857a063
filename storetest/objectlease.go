package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
)

// LeaseStore keeps which server session of sluice serve runs each batch. The object
// lease scenarios run on stores that implement it and are skipped on others.
type LeaseStore = service.LeaseStore

var objectLeaseScenarios = []scenario{
	{"ObjectLeaseHasOneHolder", testObjectLeaseHasOneHolder},
	{"ObjectLeaseExpiresAndReleases", testObjectLeaseExpiresAndReleases},
	{"ObjectSwapOnlyFromTheStatusRead", testObjectSwapOnlyFromTheStatusRead},
}

// takeLease takes the lease on batch id for holder at now for ttl, and reports whether
// holder has it.
func takeLease(t *testing.T, ls LeaseStore, id, holder string, now time.Time, ttl time.Duration) bool {
	t.Helper()
	ok, err := ls.TakeLease(t.Context(), "batch", id, holder, now, now.Add(ttl))
	if err != nil {
		t.Fatalf("take lease on %s for %s: %v", id, holder, err)
	}
	return ok
}

func testObjectLeaseHasOneHolder(t *testing.T, st sluice.Store) {
	ls := implements[LeaseStore](t, st)
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	const ttl = 30 * time.Second
	steps := []struct {
		name, id, holder string
		at               time.Duration
		want             bool
	}{
		{"a takes an unheld lease", "b1", "a", 0, true},
		{"b cannot take a live lease", "b1", "b", 10 * time.Second, false},
		{"a renews its lease", "b1", "a", 20 * time.Second, true},
		{"the renewal holds past the first expiry", "b1", "b", 40 * time.Second, false},
		{"another object's lease is its own", "b2", "b", 40 * time.Second, true},
		{"a cannot take b's", "b2", "a", 41 * time.Second, false},
	}
	for _, s := range steps {
		if got := takeLease(t, ls, s.id, s.holder, t0.Add(s.at), ttl); got != s.want {
			t.Fatalf("%s: took = %v, want %v", s.name, got, s.want)
		}
	}
}

func testObjectLeaseExpiresAndReleases(t *testing.T, st sluice.Store) {
	ls := implements[LeaseStore](t, st)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	const ttl = 30 * time.Second
	if !takeLease(t, ls, "b1", "a", t0, ttl) {
		t.Fatal("a could not take an unheld lease")
	}
	if takeLease(t, ls, "b1", "b", t0.Add(ttl-time.Nanosecond), ttl) {
		t.Fatal("b took a's lease a nanosecond before it expired")
	}
	// a was killed: its lease expires, and b takes it.
	if !takeLease(t, ls, "b1", "b", t0.Add(ttl), ttl) {
		t.Fatal("b could not take a's lease once it expired")
	}
	// a, paused past its lease, cannot renew what b took.
	if takeLease(t, ls, "b1", "a", t0.Add(ttl+time.Second), ttl) {
		t.Fatal("a renewed a lease b took after it expired")
	}
	// a's release of b's lease leaves it alone.
	if err := ls.ReleaseLease(ctx, "batch", "b1", "a"); err != nil {
		t.Fatal(err)
	}
	if takeLease(t, ls, "b1", "c", t0.Add(ttl+2*time.Second), ttl) {
		t.Fatal("c took b's lease after a released it")
	}
	// b closes gracefully: c takes over at once.
	if err := ls.ReleaseLease(ctx, "batch", "b1", "b"); err != nil {
		t.Fatal(err)
	}
	if !takeLease(t, ls, "b1", "c", t0.Add(ttl+3*time.Second), ttl) {
		t.Fatal("c could not take the lease b released")
	}
	// A holder whose own lease expired unclaimed renews it.
	if !takeLease(t, ls, "b1", "c", t0.Add(10*ttl), ttl) {
		t.Fatal("c could not renew its own expired lease")
	}
	// Releasing a lease no one holds is no error.
	if err := ls.ReleaseLease(ctx, "batch", "none", "a"); err != nil {
		t.Fatal(err)
	}
}

func testObjectSwapOnlyFromTheStatusRead(t *testing.T, st sluice.Store) {
	ob := implements[ObjectStore](t, st)
	ctx := t.Context()
	doc := func(status string) []byte {
		b, _ := json.Marshal(map[string]string{"id": "b1", "status": status})
		return b
	}
	if err := ob.SaveObject(ctx, "batch", "b1", "a", "in_progress", doc("in_progress")); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, was, status string
		want              bool
	}{
		{"a cancel from the status read", "in_progress", "cancelling", true},
		{"a save from a stale status", "in_progress", "finalizing", false},
		{"a save from the status now stored", "cancelling", "cancelled", true},
	}
	for _, s := range steps {
		ok, err := ob.SwapObject(ctx, "batch", "b1", s.was, s.status, doc(s.status))
		if err != nil || ok != s.want {
			t.Fatalf("%s: swapped %v, %v; want %v", s.name, ok, err, s.want)
		}
	}
	got, err := ob.Object(ctx, "batch", "b1", "a")
	if err != nil || string(got) != string(doc("cancelled")) {
		t.Errorf("stored %s, %v; want the last swap's document", got, err)
	}
	if docs, err := ob.ObjectsWithStatus(ctx, "batch", "cancelled"); err != nil || len(docs) != 1 {
		t.Errorf("%d objects with the swapped status, %v; want 1", len(docs), err)
	}
	if ok, err := ob.SwapObject(ctx, "batch", "none", "", "x", doc("x")); ok || err != nil {
		t.Errorf("swap of no object: %v, %v; want false, nil", ok, err)
	}
}
