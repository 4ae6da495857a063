package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
)

// UsageStore records what the batches of sluice serve used, for the per-key budgets. The
// usage scenarios run on stores that implement it and are skipped on others.
type UsageStore = service.UsageStore

var usageScenarios = []scenario{
	{"UsageReplacedAndSummedByPeriod", testUsageReplacedAndSummedByPeriod},
	{"UsageCountsOnlineRequestsAndCacheHits", testUsageCountsOnlineRequestsAndCacheHits},
}

// usageSum is one sum SumUsage gives.
type usageSum struct {
	owner, keyName, user string
	prompt, completion   int64
	cost                 float64
	batches              int64
	requests, cacheHits  int64
}

func sumUsage(t *testing.T, us UsageStore, owner string, byUser bool, from, to time.Time) []usageSum {
	t.Helper()
	out := []usageSum{}
	err := us.SumUsage(t.Context(), owner, byUser, from, to, func(o, name, user string, u sluice.Usage, cost float64, n, req, hits int64) error {
		out = append(out, usageSum{o, name, user, u.PromptTokens, u.CompletionTokens, cost, n, req, hits})
		return nil
	})
	if err != nil {
		t.Fatalf("sum usage: %v", err)
	}
	return out
}

func testUsageReplacedAndSummedByPeriod(t *testing.T, st sluice.Store) {
	us := implements[UsageStore](t, st)
	ctx := t.Context()
	dec := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	jan := dec.AddDate(0, 1, 0)
	save := func(id, owner, name, user string, created time.Time, prompt, completion int64, cost float64) {
		t.Helper()
		u := sluice.Usage{PromptTokens: prompt, CompletionTokens: completion}
		if err := us.SaveUsage(ctx, id, owner, name, user, created, u, cost, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	save("b1", "alice", "team-a", "u1", dec.Add(time.Hour), 100, 10, 1)
	save("b1", "alice", "team-a", "u1", dec.Add(time.Hour), 300, 30, 3) // replaces, never adds
	save("b2", "alice", "team-a", "u2", dec.Add(48*time.Hour), 50, 5, 0.5)
	save("b3", "bob", "team-b", "", dec, 1000, 0, 0.25)    // at the period's start: counts
	save("b4", "bob", "team-b", "", jan, 7, 7, 7)          // at its end: the next period's
	save("b5", "carol", "old-name", "", dec, 5, 0, 0.25)   // carol's costs tie with bob's
	save("b5", "carol", "new-name", "u9", dec, 5, 0, 0.25) // the name and user follow the last save

	want := []usageSum{
		{"alice", "team-a", "", 350, 35, 3.5, 2, 0, 0},
		{"bob", "team-b", "", 1000, 0, 0.25, 1, 0, 0}, // then most tokens first
		{"carol", "new-name", "", 5, 0, 0.25, 1, 0, 0},
	}
	if got := sumUsage(t, us, "", false, dec, jan); !slices.Equal(got, want) {
		t.Errorf("per owner:\n got %v\nwant %v", got, want)
	}
	wantUsers := []usageSum{{"alice", "team-a", "u1", 300, 30, 3, 1, 0, 0}, {"alice", "team-a", "u2", 50, 5, 0.5, 1, 0, 0}}
	if got := sumUsage(t, us, "alice", true, dec, jan); !slices.Equal(got, wantUsers) {
		t.Errorf("alice by user:\n got %v\nwant %v", got, wantUsers)
	}
	if got, want := sumUsage(t, us, "bob", false, jan, jan.AddDate(0, 1, 0)), []usageSum{{"bob", "team-b", "", 7, 7, 7, 1, 0, 0}}; !slices.Equal(got, want) {
		t.Errorf("bob in January: %v, want %v", got, want)
	}
	if got := sumUsage(t, us, "dave", false, dec, jan); len(got) != 0 {
		t.Errorf("dave, who has no batches: %v", got)
	}
}

// testUsageCountsOnlineRequestsAndCacheHits: the online gateway's rows count requests and
// cache hits, not batches; a row of cache hits only costs nothing and is still summed.
func testUsageCountsOnlineRequestsAndCacheHits(t *testing.T, st sluice.Store) {
	us := implements[UsageStore](t, st)
	ctx := t.Context()
	dec := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	jan := dec.AddDate(0, 1, 0)
	save := func(id, user string, u sluice.Usage, cost float64, requests, hits int64) {
		t.Helper()
		if err := us.SaveUsage(ctx, id, "alice", "team-a", user, dec, u, cost, requests, hits); err != nil {
			t.Fatal(err)
		}
	}
	save("b1", "u1", sluice.Usage{PromptTokens: 100, CompletionTokens: 10}, 1, 0, 0) // a batch
	save("online-1", "u1", sluice.Usage{PromptTokens: 20, CompletionTokens: 2}, 0.5, 3, 1)
	save("online-1", "u1", sluice.Usage{PromptTokens: 40, CompletionTokens: 4}, 0.75, 5, 2) // replaces, never adds
	save("online-2", "u2", sluice.Usage{}, 0, 4, 4)                                         // cache hits only

	want := []usageSum{{"alice", "team-a", "", 140, 14, 1.75, 1, 9, 6}}
	if got := sumUsage(t, us, "alice", false, dec, jan); !slices.Equal(got, want) {
		t.Errorf("per owner:\n got %v\nwant %v", got, want)
	}
	wantUsers := []usageSum{
		{"alice", "team-a", "u1", 140, 14, 1.75, 1, 5, 2},
		{"alice", "team-a", "u2", 0, 0, 0, 0, 4, 4},
	}
	if got := sumUsage(t, us, "alice", true, dec, jan); !slices.Equal(got, wantUsers) {
		t.Errorf("by user:\n got %v\nwant %v", got, wantUsers)
	}
}
