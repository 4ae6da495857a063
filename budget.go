package sluice

import (
	"fmt"
	"sync"
)

// Budget caps what one job may spend, over all its runs. A zero field means no cap.
//
// Before a request is sent it reserves its worst case: its prompt plus its output bound
// (max_tokens), priced with Config.Cost. Dispatch stops before a reservation would take
// spending past the cap; the answer's real usage then settles the reservation. So the
// job never spends more than the cap plus nothing at all: the worst cases of the
// requests in flight were inside the cap when they were sent. A request with no output
// bound reserves its prompt plus the mean output seen so far (defaultOutputGuess before
// any answer), so for those the cap can be overshot by what they write beyond the mean.
type Budget struct {
	// MaxCost is the most the job may spend, in USD, as priced by Config.Cost. Models
	// without a price cost 0 and are not held back by it.
	MaxCost float64
	// MaxTokens is the most tokens (prompt plus completion) the job may use.
	MaxTokens int64
}

// defaultOutputGuess is the output a request with no max_tokens is assumed to write
// before any answer has shown the real mean.
const defaultOutputGuess = 256

// hold is what an attempt has reserved against the budget.
type hold struct {
	cost   float64
	tokens int64
}

// budget tracks spending against a Budget: a run's own, or a pool shared by runs.
// Safe for concurrent use.
type budget struct {
	limit Budget
	cost  func(model string, u Usage) float64 // nil: nothing is priced

	mu      sync.Mutex
	spent   hold // settled, including the job's earlier runs
	held    hold // reserved by attempts in flight
	refused bool // a run stopped because its next request did not fit
}

// BudgetPool is a Budget shared by the runs of several jobs, say all the batches of one
// client in one month: every run started with WithBudgetPool reserves its requests'
// worst cases against the pool, so together they stop before it would be crossed. Safe
// for concurrent use.
type BudgetPool struct{ b budget }

// NewBudgetPool returns a pool capped at limit (a pool with no cap tracks nothing) that has already spent spentCost USD and
// spentTokens tokens, pricing usage with cost (nil: only a token cap can bind).
func NewBudgetPool(limit Budget, cost func(model string, u Usage) float64, spentCost float64, spentTokens int64) *BudgetPool {
	return &BudgetPool{b: budget{limit: limit, cost: cost, spent: hold{cost: spentCost, tokens: spentTokens}}}
}

// Spent returns what the pool's runs have spent, with what it started with.
func (p *BudgetPool) Spent() (cost float64, tokens int64) {
	s := p.b.spentSoFar()
	return s.cost, s.tokens
}

// Exhausted reports whether a run of the pool has stopped because its next request could
// have taken the pool past its cap: what is left is less than a request costs.
func (p *BudgetPool) Exhausted() bool {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.b.refused
}

// refuse records that a run stopped on the budget.
func (b *budget) refuse() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refused = true
}

// RunOption changes how one run of Engine.Start goes.
type RunOption func(*Run)

// WithBudgetPool makes the run spend from pool instead of the Engine's Config.Budget;
// the job's earlier runs are not counted again (the pool's starting figures are taken
// to include them).
func WithBudgetPool(pool *BudgetPool) RunOption {
	return func(r *Run) { r.budget = &pool.b }
}

func (b *budget) capped() bool { return b.limit.MaxCost > 0 || b.limit.MaxTokens > 0 }

// reserve holds h if the budget allows it, and reports whether it did.
func (b *budget) reserve(h hold) bool {
	if !b.capped() {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if (b.limit.MaxCost > 0 && b.spent.cost+b.held.cost+h.cost > b.limit.MaxCost) ||
		(b.limit.MaxTokens > 0 && b.spent.tokens+b.held.tokens+h.tokens > b.limit.MaxTokens) {
		return false
	}
	b.held.cost += h.cost
	b.held.tokens += h.tokens
	return true
}

// settle releases h and records what the attempt really cost. Without a cap there is
// nothing to track: runs without a budget pay nothing for it on their hot path.
func (b *budget) settle(h, actual hold) {
	if !b.capped() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held.cost -= h.cost
	b.held.tokens -= h.tokens
	b.spent.cost += actual.cost
	b.spent.tokens += actual.tokens
}

// spentSoFar is what was settled.
func (b *budget) spentSoFar() hold {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent
}

// exhaustedError says why a run stopped on its budget.
func (b *budget) exhaustedError() error {
	spent := b.spentSoFar()
	switch {
	case b.limit.MaxCost > 0 && b.limit.MaxTokens > 0:
		return fmt.Errorf("%w: spent $%.4f of $%.4f and %d of %d tokens", ErrBudgetExhausted, spent.cost, b.limit.MaxCost, spent.tokens, b.limit.MaxTokens)
	case b.limit.MaxCost > 0:
		return fmt.Errorf("%w: spent $%.4f of $%.4f; the next request could cost more than is left", ErrBudgetExhausted, spent.cost, b.limit.MaxCost)
	default:
		return fmt.Errorf("%w: used %d of %d tokens; the next request could use more than is left", ErrBudgetExhausted, spent.tokens, b.limit.MaxTokens)
	}
}

// worstCase is what a request may cost at most, for the budget.
func (r *Run) worstCase(est Estimate) hold {
	if !r.budget.capped() {
		return hold{}
	}
	out := est.MaxOutputTokens
	if out == 0 {
		out = r.e.lim.meanOutput(defaultOutputGuess)
	}
	h := hold{tokens: est.PromptTokens + out}
	if r.budget.cost != nil {
		h.cost = r.budget.cost(est.Model, Usage{PromptTokens: est.PromptTokens, CompletionTokens: out})
	}
	return h
}

// actualCost is what an answer's usage cost.
func (r *Run) actualCost(model string, u Usage) hold {
	if !r.budget.capped() {
		return hold{}
	}
	h := hold{tokens: u.Total()}
	if r.budget.cost != nil && u != (Usage{}) {
		h.cost = r.budget.cost(model, u)
	}
	return h
}

// priorSpending is what the job's earlier runs spent, from its ledger.
func (r *Run) priorSpending(stats *Stats) hold {
	h := hold{tokens: stats.Usage.Total()}
	if r.e.cfg.Cost != nil {
		for _, m := range stats.ByModel {
			h.cost += r.e.cfg.Cost(m.Model, m.Usage)
		}
	}
	return h
}
