package sluice

import (
	"fmt"
	"sync"
	"time"
)

// Budget caps what one job may spend, over all its runs. A zero field means no cap.
//
// Before a request is sent it reserves its worst case: its prompt plus its output bound
// (max_tokens), priced with Config.Cost. Dispatch stops before a reservation would take
// spending past the cap; the answer's real usage then settles the reservation. So the
// job never spends more than the cap plus nothing at all: the worst cases of the
// requests in flight were inside the cap when they were sent. A request with no output
// bound reserves its prompt plus the mean output seen so far (defaultOutputGuess before
// any answer), so for those the cap can be overshot by what they write beyond the mean;
// a BudgetPool with a context limit (SetContextLimit) bounds that to one request.
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
	// unbounded is set on a request with no output bound admitted on its guess rather
	// than its worst case: the budget lets one such request be in flight at a time.
	unbounded bool
}

// want is what a request asks to reserve: its worst case (full) or, for a request with
// no output bound (unbounded), its guess when the worst case no longer fits.
type want struct {
	full, guess hold
	unbounded   bool
}

// budget tracks spending against a Budget: a run's own, or a pool shared by runs.
// Safe for concurrent use.
type budget struct {
	limit Budget
	cost  func(model string, u Usage) float64 // nil: nothing is priced

	// contextLimit bounds what a request with no max_tokens may use, prompt included
	// (nil or 0: unknown, reserve the mean output seen instead).
	contextLimit func(model string) int64
	// journal records, durably, a ceiling on what was spent plus what is reserved,
	// before a reservation takes them past the last ceiling recorded (nil: none).
	journal func(cost float64, tokens int64) error

	mu        sync.Mutex
	spent     hold // settled, including the job's earlier runs
	held      hold // reserved by attempts in flight
	journaled hold // the last ceiling the journal recorded
	unbounded int  // requests admitted on their guess, in flight
	holds     int  // reservations in flight
	refused   bool // a run stopped because its next request did not fit
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

// SetContextLimit bounds what a request with no max_tokens may use, prompt and output,
// by its model (0: unknown). Such a request then reserves that bound while it fits in
// what is left; once it does not, one such request at a time is admitted on its prompt
// plus the mean output seen so far, so the pool is overshot by at most that one
// request's output. Without a limit such requests reserve the mean output, and any
// number of them may overshoot. Call it before the pool is used.
func (p *BudgetPool) SetContextLimit(limit func(model string) int64) { p.b.contextLimit = limit }

// SetJournal makes the pool record, through record, a ceiling on what it has spent plus
// what its requests in flight have reserved, before any reservation takes them past the
// last ceiling recorded: after a crash, the last ceiling bounds what the pool's runs
// may have spent, answers lost with the process included. Ceilings are recorded a
// twentieth of the budget ahead, so record runs about twenty times per budget spent. A
// request whose ceiling cannot be recorded is not sent. Call it before the pool is used.
func (p *BudgetPool) SetJournal(record func(cost float64, tokens int64) error) { p.b.journal = record }

// Reserved returns what the pool's requests in flight have reserved.
func (p *BudgetPool) Reserved() (cost float64, tokens int64) {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return p.b.held.cost, p.b.held.tokens
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

// reserve holds what w asks, if the budget allows it: its worst case when that fits,
// else (an unbounded request, when no other is in flight on its guess) its guess. It
// returns the hold to settle and whether it was reserved.
func (b *budget) reserve(w want) (hold, bool) {
	if !b.capped() {
		return w.full, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	h := w.full
	if !b.fits(h) {
		if !w.unbounded || b.unbounded > 0 || !b.fits(w.guess) {
			return hold{}, false
		}
		h = w.guess
		h.unbounded = true
	}
	if b.journal != nil && !b.record(h) {
		return hold{}, false
	}
	if h.unbounded {
		b.unbounded++
	}
	b.holds++
	b.held.cost += h.cost
	b.held.tokens += h.tokens
	return h, true
}

// budgetPoll is how often a run with nothing in flight whose next request does not fit
// looks again while other runs of its pool hold reservations.
const budgetPoll = 20 * time.Millisecond

// holding reports whether attempts in flight hold reservations.
func (b *budget) holding() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.holds > 0
}

// fits reports whether h fits in what is left. b.mu must be held.
func (b *budget) fits(h hold) bool {
	return (b.limit.MaxCost <= 0 || b.spent.cost+b.held.cost+h.cost <= b.limit.MaxCost) &&
		(b.limit.MaxTokens <= 0 || b.spent.tokens+b.held.tokens+h.tokens <= b.limit.MaxTokens)
}

// record has the journal record a ceiling covering h when the last one does not, and
// reports whether it could. b.mu must be held.
func (b *budget) record(h hold) bool {
	need := hold{cost: b.spent.cost + b.held.cost + h.cost, tokens: b.spent.tokens + b.held.tokens + h.tokens}
	// Only a capped dimension needs a ceiling: the other is recorded as it goes.
	if (b.limit.MaxCost <= 0 || need.cost <= b.journaled.cost) && (b.limit.MaxTokens <= 0 || need.tokens <= b.journaled.tokens) {
		return true
	}
	next := hold{cost: need.cost + b.limit.MaxCost/20, tokens: need.tokens + b.limit.MaxTokens/20}
	if b.limit.MaxCost > 0 {
		next.cost = max(need.cost, min(next.cost, b.limit.MaxCost))
	}
	if b.limit.MaxTokens > 0 {
		next.tokens = max(need.tokens, min(next.tokens, b.limit.MaxTokens))
	}
	if err := b.journal(next.cost, next.tokens); err != nil {
		return false
	}
	b.journaled = next
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
	if h.unbounded {
		b.unbounded--
	}
	b.holds--
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

// worstCase is what a request may cost at most, for the budget, and for a request with
// no output bound also its guess: its prompt plus the mean output seen so far.
func (r *Run) worstCase(est Estimate) want {
	return r.budget.worstCase(est, func() int64 { return r.e.lim.meanOutput(defaultOutputGuess) })
}

// worstCase is what a request may cost at most, and for a request with no output bound
// also its guess: its prompt plus meanOutput(), called only then.
func (b *budget) worstCase(est Estimate, meanOutput func() int64) want {
	if !b.capped() {
		return want{}
	}
	price := func(out int64) hold {
		h := hold{tokens: est.PromptTokens + out}
		if b.cost != nil {
			h.cost = b.cost(est.Model, Usage{PromptTokens: est.PromptTokens, CompletionTokens: out})
		}
		return h
	}
	if est.MaxOutputTokens > 0 {
		return want{full: price(est.MaxOutputTokens)}
	}
	guess := price(meanOutput())
	var limit int64
	if b.contextLimit != nil {
		limit = b.contextLimit(est.Model)
	}
	if limit <= 0 {
		return want{full: guess}
	}
	return want{full: price(max(limit-est.PromptTokens, 0)), guess: guess, unbounded: true}
}

// actualCost is what an answer's usage cost.
func (r *Run) actualCost(model string, u Usage) hold { return r.budget.actualCost(model, u) }

// actualCost is what an answer's usage cost.
func (b *budget) actualCost(model string, u Usage) hold {
	if !b.capped() {
		return hold{}
	}
	h := hold{tokens: u.Total()}
	if b.cost != nil && u != (Usage{}) {
		h.cost = b.cost(model, u)
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
