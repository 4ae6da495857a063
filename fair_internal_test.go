package sluice

import (
	"testing"
	"time"
)

// TestFairSlotsBetweenTenantsThenRuns: with every run always wanting a slot, freed slots
// go to tenants in proportion to their weights however many runs each has, and a
// tenant's runs share its slots evenly.
func TestFairSlotsBetweenTenantsThenRuns(t *testing.T) {
	const window = 6
	e := &Engine{cfg: Config{Concurrency: window}, lim: newLimiter(time.Now(), window, 1e6, 0)} // an RPM cap: no slow start
	newRun := func(tenant string, weight float64) *Run {
		r := &Run{e: e}
		WithTenant(tenant, weight)(r)
		return r
	}
	var runs []*Run
	for range 8 {
		runs = append(runs, newRun("many", 1))
	}
	one := newRun("one", 1)
	heavy := newRun("heavy", 2)
	runs = append(runs, one, heavy)

	var holding []*Run // slots in flight, oldest first
	grants := map[*Run]int{}
	// want has r take slots until it must wait: a run always wants one more.
	want := func(r *Run) {
		for {
			ok, _ := e.acquire(r)
			if !ok {
				return
			}
			holding = append(holding, r)
			grants[r]++
		}
	}
	for _, r := range runs {
		want(r)
	}
	// Free the oldest slot; the runs it was given to take it and ask for more.
	for range 4000 {
		old := holding[0]
		holding = holding[1:]
		e.release(old)
		for _, r := range runs {
			if r.granted {
				want(r)
			}
		}
	}
	byTenant := map[string]int{}
	for r, n := range grants {
		byTenant[r.tenant] += n
	}
	total := float64(byTenant["many"] + byTenant["one"] + byTenant["heavy"])
	for tenant, want := range map[string]float64{"many": 0.25, "one": 0.25, "heavy": 0.5} {
		if got := float64(byTenant[tenant]) / total; got < want-0.05 || got > want+0.05 {
			t.Errorf("tenant %s got %.2f of the slots, want %.2f (%v)", tenant, got, want, byTenant)
		}
	}
	for _, r := range runs[:8] {
		if got, want := float64(grants[r]), float64(byTenant["many"])/8; got < want*0.8 || got > want*1.2 {
			t.Errorf("a run of tenant many got %v slots, want about %v", got, want)
		}
	}
	if e.inFlight != len(holding) || e.inFlight > window {
		t.Errorf("%d slots counted in flight, %d held, window %d", e.inFlight, len(holding), window)
	}
}

// TestFairSlotsGiveBackAGrantNotTaken: a run that stops waiting after a slot was given
// to it hands the slot on.
func TestFairSlotsGiveBackAGrantNotTaken(t *testing.T) {
	e := &Engine{cfg: Config{Concurrency: 1}, lim: newLimiter(time.Now(), 1, 0, 0)}
	a, b, c := &Run{e: e}, &Run{e: e}, &Run{e: e}
	WithTenant("x", 1)(b)
	WithTenant("y", 1)(c)
	if ok, _ := e.acquire(a); !ok {
		t.Fatal("first acquire waits")
	}
	_, waitB := e.acquire(b)
	_, waitC := e.acquire(c)
	e.release(a)
	select {
	case <-waitB:
	case <-waitC:
		b, c, waitC = c, b, waitB
	default:
		t.Fatal("a freed slot was given to no one")
	}
	e.stopWaiting(b) // b stops before taking it
	select {
	case <-waitC:
	default:
		t.Fatal("the slot b gave back went to no one")
	}
	if ok, _ := e.acquire(c); !ok {
		t.Fatal("c was given a slot but cannot take it")
	}
	e.release(c)
	if e.inFlight != 0 || len(e.fair.tenants) != 0 {
		t.Errorf("after every release: %d in flight, tenants %v", e.inFlight, e.fair.tenants)
	}
}
