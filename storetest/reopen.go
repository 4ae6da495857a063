package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

// reopenScenario is a subtest of RunReopen: open opens the subtest's store, a new one
// each call, over the same data.
type reopenScenario struct {
	name string
	run  func(t *testing.T, open func() sluice.Store)
}

var reopenScenarios = []reopenScenario{
	{"ServeStateSurvivesAReopen", testServeStateSurvivesAReopen},
}

// RunReopen runs the scenarios of what a store keeps when it is closed and opened again
// (a server that restarts, a replica that starts beside another). place must make a new,
// empty place for a store (a file, a schema) and return the function that opens a store
// there; the scenario closes each store it opens. Subtests run in parallel, each in its
// own place.
func RunReopen(t *testing.T, place func(t *testing.T) (open func() sluice.Store)) {
	t.Helper()
	for _, sc := range reopenScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, place(t))
		})
	}
}

// testServeStateSurvivesAReopen records the state of sluice serve (a file, usage, a
// budget ceiling, unconfirmed spending), closes the store and opens it again: a server
// that starts over it finds all of it, and new files list after the old ones.
func testServeStateSurvivesAReopen(t *testing.T, open func() sluice.Store) {
	ctx := t.Context()
	period := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	st := open()
	ob, rs, us := implements[ObjectStore](t, st), implements[ReservationStore](t, st), implements[UsageStore](t, st)
	saveFile(t, ob, "f1", "a", "batch", "")
	saveFile(t, ob, "f2", "a", "batch", "")
	if err := us.SaveUsage(ctx, "b1", "a", "team-a", "", period, sluice.Usage{PromptTokens: 70, CompletionTokens: 30}, 0.5, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := rs.SaveReservation(ctx, "s1", "a", period, 0, 0, 500, 2); err != nil {
		t.Fatal(err)
	}
	if err := rs.SettleReservation(ctx, "s0", "a", period, 20, 0.1); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil { // s1 crashes: its ceiling stays
		t.Fatal(err)
	}

	st = open()
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	ob, rs, us = implements[ObjectStore](t, st), implements[ReservationStore](t, st), implements[UsageStore](t, st)
	saveFile(t, ob, "f3", "a", "batch", "")
	docs, more, err := ob.ListObjects(ctx, "file", "a", "", "", true, 10)
	if got, want := docIDs(t, docs), []string{"f1", "f2", "f3"}; err != nil || more || !slices.Equal(got, want) {
		t.Errorf("files after a reopen: %v more %v, %v; want %v", got, more, err, want)
	}
	if got, want := reservations(t, rs, "s2"), []reservation{{"s1", "a", period, 0, 0, 500, 2}}; !slices.Equal(got, want) {
		t.Errorf("ceilings after a reopen: %v, want %v", got, want)
	}
	if got, want := sumUsage(t, us, "a", false, period, period.AddDate(0, 1, 0)), []usageSum{{"a", "team-a", "", 70, 30, 0.5, 1, 0, 0}}; !slices.Equal(got, want) {
		t.Errorf("usage after a reopen: %v, want %v", got, want)
	}
	if tokens, cost, err := rs.SumUnconfirmed(ctx, "a", period, period.AddDate(0, 1, 0)); tokens != 20 || cost != 0.1 || err != nil {
		t.Errorf("unconfirmed after a reopen: %d, %v, %v; want 20, 0.1", tokens, cost, err)
	}
}
