package sluice

import "testing"

// TestBudgetJournalRecordsAheadAndRarely: a pool records a ceiling before any
// reservation passes the last one, a twentieth of the budget ahead, and only for the
// dimensions it caps.
func TestBudgetJournalRecordsAheadAndRarely(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit Budget
		cost  func(string, Usage) float64
	}{
		{"tokens", Budget{MaxTokens: 10_000}, nil},
		{"cost", Budget{MaxCost: 10}, func(_ string, u Usage) float64 { return float64(u.Total()) / 1000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewBudgetPool(tc.limit, tc.cost, 0, 0)
			var records int
			var ceiling hold
			p.SetJournal(func(cost float64, tokens int64) error {
				records++
				ceiling = hold{cost: cost, tokens: tokens}
				return nil
			})
			b := &p.b
			for range 600 {
				h := hold{tokens: 15}
				if tc.cost != nil {
					h.cost = 0.015
				}
				got, ok := b.reserve(want{full: h})
				if !ok {
					break
				}
				b.mu.Lock()
				spentHeld := hold{cost: b.spent.cost + b.held.cost, tokens: b.spent.tokens + b.held.tokens}
				b.mu.Unlock()
				if (tc.limit.MaxTokens > 0 && spentHeld.tokens > ceiling.tokens) || (tc.limit.MaxCost > 0 && spentHeld.cost > ceiling.cost+1e-9) {
					t.Fatalf("spent and held %+v past the recorded ceiling %+v", spentHeld, ceiling)
				}
				b.settle(got, hold{tokens: 10, cost: got.cost * 2 / 3})
			}
			if records < 10 || records > 25 {
				t.Errorf("%d ceilings recorded for 600 requests, want about 20 (one per twentieth of the budget)", records)
			}
		})
	}
}

// TestBudgetUnboundedOneAtATime: once a request's context limit no longer fits, requests
// without max_tokens go one at a time on their guess.
func TestBudgetUnboundedOneAtATime(t *testing.T) {
	p := NewBudgetPool(Budget{MaxTokens: 1000}, nil, 0, 0)
	b := &p.b
	w := want{full: hold{tokens: 4096}, guess: hold{tokens: 100}, unbounded: true}
	first, ok := b.reserve(w)
	if !ok || !first.unbounded || first.tokens != 100 {
		t.Fatalf("first unbounded request: %+v, %v; want admitted on its guess", first, ok)
	}
	if _, ok := b.reserve(w); ok {
		t.Fatal("a second unbounded request was admitted while one is in flight")
	}
	if !b.holding() {
		t.Error("the pool does not say it holds a reservation")
	}
	b.settle(first, hold{tokens: 300})
	if _, ok := b.reserve(w); !ok {
		t.Fatal("the next unbounded request waits although none is in flight")
	}
	small := want{full: hold{tokens: 500}}
	if h, ok := b.reserve(small); !ok || h.unbounded {
		t.Errorf("a bounded request that fits: %+v, %v", h, ok)
	}
}
