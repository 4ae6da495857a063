package batch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
)

// TestOnlineRunsWhatNoBatchHolds checks Online: what a crashed online run left in flight
// is released and run, what a batch holds is left to it, and the run ends once nothing
// is pending, each request answered once; its progress hook and engine are closed.
func TestOnlineRunsWhatNoBatchHolds(t *testing.T) {
	ctx := context.Background()
	var lines []string
	for i := range 10 {
		lines = append(lines, request(fmt.Sprintf("req-%d", i), "gpt-4o-mini"))
	}
	c := newClient(t, lines)
	claim := func(owner string, n int) []sluice.Item {
		items, err := c.st.Claim(ctx, sluice.ClaimParams{JobID: c.job.ID, Owner: owner, Max: n, Lease: time.Hour, Now: time.Now()})
		if err != nil || len(items) != n {
			t.Fatalf("claim %d for %s: %d, %v", n, owner, len(items), err)
		}
		return items
	}
	held := claim("part-1", 2)            // a batch's
	claim(batch.OnlineOwner(c.job.ID), 3) // a crashed online run's
	up := newUpstream(t)
	var owner string
	closed, starts, stops := 0, 0, 0
	online, err := batch.NewOnline(ctx, c.st, c.job, func(o string) (*sluice.Engine, func(), error) {
		owner = o
		eng, err := sluice.New(c.st, up.client(t), sluice.Config{Concurrency: 4, Owner: o})
		return eng, func() { closed++ }, err
	}, func(*sluice.Run) func() {
		starts++
		return func() { stops++ }
	})
	if err != nil {
		t.Fatal(err)
	}
	if online.Last() != nil {
		t.Error("Last before the first run is not nil")
	}
	if err := online.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	stats, err := c.st.Stats(ctx, c.job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Done != 8 || stats.InFlight != 2 || stats.Pending != 0 {
		t.Errorf("done %d, in flight %d, pending %d: want 8, 2 (the batch's) and 0", stats.Done, stats.InFlight, stats.Pending)
	}
	if err := online.Run(ctx); err != nil { // nothing left: a second run ends at once
		t.Fatalf("second Run: %v", err)
	}
	online.Close()
	if owner != batch.OnlineOwner(c.job.ID) || closed != 1 || starts != 2 || stops != 2 || online.Last() == nil {
		t.Errorf("owner %q, closed %d, started %d, stopped %d, last %v: want %q, 1, 2, 2 and the last run",
			owner, closed, starts, stops, online.Last(), batch.OnlineOwner(c.job.ID))
	}
	isHeld := map[string]bool{}
	for _, it := range held {
		isHeld[it.Request.CustomID] = true
	}
	for _, id := range c.ids {
		want := 1
		if isHeld[id] {
			want = 0
		}
		if got := up.count(id); got != want {
			t.Errorf("%s answered %d times, want %d", id, got, want)
		}
	}
}
