package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sluice-llm/sluice"
)

// DefaultUsageInterval is how often the usage of a running batch is read from its ledger,
// recorded, and checked against its key's budget.
const DefaultUsageInterval = 5 * time.Second

// UserMetadataKey is the batch metadata key whose value names the end user a batch is
// for, so that usage is also reported per user.
const UserMetadataKey = "user"

const (
	codeInsufficientQuota = "insufficient_quota"
	msgQuota              = "You exceeded your current quota, please check your plan and billing details. " +
		"This key's budget for the period is spent; GET /v1/usage says when it resets."
	msgQuotaRequest = "This request was not sent: the key's budget for the period was spent."
)

// Period is how often a KeyBudget starts again.
type Period string

// Budget periods.
const (
	// PeriodMonthly starts on Budget.ResetDay of every month, at 00:00 UTC.
	PeriodMonthly Period = "monthly"
	// PeriodDaily starts every day at 00:00 UTC.
	PeriodDaily Period = "daily"
)

// KeyBudget caps what one client key may spend in each period. A zero MaxCost or MaxTokens
// means no cap of that kind; the zero KeyBudget caps nothing (usage is still tracked, by
// calendar month).
type KeyBudget struct {
	// MaxCost is the most the key's batches may cost per period, in USD, as priced by
	// Config.Cost.
	MaxCost float64
	// MaxTokens is the most tokens (prompt plus completion) per period.
	MaxTokens int64
	// Period is PeriodMonthly (the default, "") or PeriodDaily.
	Period Period
	// ResetDay is the day of the month, 1 to 28, a monthly period starts on (0: 1).
	ResetDay int
}

func (b KeyBudget) capped() bool { return b.MaxCost > 0 || b.MaxTokens > 0 }

func (b KeyBudget) validate() error {
	switch {
	case b.MaxCost < 0 || b.MaxTokens < 0:
		return errors.New("budget must not be negative")
	case b.Period != "" && b.Period != PeriodMonthly && b.Period != PeriodDaily:
		return fmt.Errorf("budget period must be %q or %q, got %q", PeriodMonthly, PeriodDaily, b.Period)
	case b.ResetDay < 0 || b.ResetDay > 28:
		return fmt.Errorf("budget reset day must be 1 to 28, got %d", b.ResetDay)
	case b.Period == PeriodDaily && b.ResetDay != 0:
		return errors.New("a daily budget has no reset day")
	}
	return nil
}

// Bounds returns the period t falls in: [start, end), in UTC.
func (b KeyBudget) Bounds(t time.Time) (start, end time.Time) {
	t = t.UTC()
	y, m, d := t.Date()
	if b.Period == PeriodDaily {
		start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	}
	day := max(b.ResetDay, 1)
	if d < day {
		m--
	}
	start = time.Date(y, m, day, 0, 0, 0, 0, time.UTC) // Date normalises month 0
	return start, start.AddDate(0, 1, 0)
}

// Key is a client key with a name (for usage reports; the key itself is never kept) and
// a budget.
type Key struct {
	// Name identifies the key in usage; it must be unique and stay the same across
	// restarts.
	Name string
	// Hash is the key's hex SHA-256 (see HashKey).
	Hash   string
	Budget KeyBudget
}

// UsageStore records what batches and online requests used, for the per-key budgets
// (sqlite.Store implements it).
type UsageStore interface {
	// SaveUsage records row id's whole usage so far, replacing what was recorded before: a
	// batch's (requests 0), or the online gateway's, counting requests of which cacheHits
	// were answered from its cache.
	SaveUsage(ctx context.Context, id, tenant, keyName, user string, created time.Time, u sluice.Usage, cost float64,
		requests, cacheHits int64) error
	// SumUsage calls fn with the usage of tenant's rows ("": each tenant's) created in
	// [from, to), summed per tenant, or per tenant and user with byUser; most costly first.
	// Each sum comes with the batches it counts, the online requests and their cache hits.
	SumUsage(ctx context.Context, tenant string, byUser bool, from, to time.Time,
		fn func(tenant, keyName, user string, u sluice.Usage, cost float64, batches, requests, cacheHits int64) error) error
}

// key returns the configured key with hash tenant; a key given only in KeyHashes has a
// name made from its hash and no budget.
func (s *Service) key(tenant string) Key {
	if k, ok := s.named[tenant]; ok {
		return k
	}
	return Key{Name: "key-" + tenant[:min(8, len(tenant))], Hash: tenant}
}

// poolKey names one key's budget in one period.
type poolKey struct {
	tenant string
	from   time.Time
}

// budgetPool is the spending pool of tenant's budget for the period t is in, shared by
// every run of the key's batches so that together they stop before the budget would be
// crossed (each request reserves its worst case first). It starts from the usage
// recorded for the period; nil when the key has no budget.
func (s *Service) budgetPool(ctx context.Context, tenant string, t time.Time) (*sluice.BudgetPool, error) {
	b := s.key(tenant).Budget
	if !b.capped() {
		return nil, nil
	}
	from, _ := b.Bounds(t)
	k := poolKey{tenant: tenant, from: from}
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	if p, ok := s.pools[k]; ok {
		return p, nil
	}
	sum, err := s.periodUsage(ctx, tenant, t)
	if err != nil {
		return nil, err
	}
	p := sluice.NewBudgetPool(sluice.Budget{MaxCost: b.MaxCost, MaxTokens: b.MaxTokens}, s.cfg.Cost,
		sum.cost+sum.unconfCost, sum.usage.Total()+sum.unconfTokens)
	p.SetContextLimit(s.cfg.ContextLimit)
	p.SetJournal(s.journal(tenant, from, sum))
	if s.pools == nil {
		s.pools = map[poolKey]*sluice.BudgetPool{}
	}
	for old := range s.pools { // the key's earlier periods are over
		if old.tenant == tenant {
			delete(s.pools, old)
		}
	}
	s.pools[k] = p
	return p, nil
}

// poolExhausted reports whether a run of tenant's batches stopped in the period t is in
// because what was left of the budget could not pay for its next request.
func (s *Service) poolExhausted(tenant string, t time.Time) bool {
	b := s.key(tenant).Budget
	if !b.capped() {
		return false
	}
	from, _ := b.Bounds(t)
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	p, ok := s.pools[poolKey{tenant: tenant, from: from}]
	return ok && p.Exhausted()
}

// recordUsage reads the batch's usage from its ledger and records it. A failure is only
// logged: the next reading replaces it.
func (s *Service) recordUsage(ctx context.Context, rec *batchRecord) {
	stats, err := s.cfg.Store.Stats(ctx, rec.ID)
	if errors.Is(err, sluice.ErrNotFound) {
		return
	}
	if err == nil {
		var cost float64
		if s.cfg.Cost != nil {
			for _, m := range stats.ByModel {
				cost += s.cfg.Cost(m.Model, m.Usage)
			}
		}
		err = s.cfg.Store.SaveUsage(ctx, rec.ID, rec.Tenant, s.key(rec.Tenant).Name, rec.Metadata[UserMetadataKey],
			rec.countedAt(), stats.Usage, cost, 0, 0)
	}
	if err != nil {
		s.cfg.Logger.Error("record usage", "batch", rec.ID, "err", err)
	}
}

// usageTotal is a sum of usage.
type usageTotal struct {
	usage sluice.Usage
	cost  float64
	// batches counts batches, requests online requests, cacheHits those of them answered
	// from the gateway's cache.
	batches, requests, cacheHits int64
	// unconfTokens and unconfCost are unconfirmed spending: what a server that did not
	// end cleanly may have spent beyond its ledgers (reserve.go).
	unconfTokens int64
	unconfCost   float64
}

// tokens and spent are the sum's tokens and cost, unconfirmed spending included.
func (t usageTotal) tokens() int64  { return t.usage.Total() + t.unconfTokens }
func (t usageTotal) spent() float64 { return t.cost + t.unconfCost }

// periodUsage sums tenant's usage in the period of its budget that t falls in.
func (s *Service) periodUsage(ctx context.Context, tenant string, t time.Time) (usageTotal, error) {
	from, to := s.key(tenant).Budget.Bounds(t)
	var sum usageTotal
	err := s.cfg.Store.SumUsage(ctx, tenant, false, from, to, func(_, _, _ string, u sluice.Usage, cost float64, _, _, _ int64) error {
		sum = usageTotal{usage: u, cost: cost}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.unconfTokens, sum.unconfCost, err = s.cfg.Store.SumUnconfirmed(ctx, tenant, from, to)
	return sum, err
}

// exhausted reports whether sum has spent budget b.
func (b KeyBudget) exhausted(sum usageTotal) bool {
	return (b.MaxCost > 0 && sum.spent() >= b.MaxCost) || (b.MaxTokens > 0 && sum.tokens() >= b.MaxTokens)
}

// checkQuota answers insufficient_quota when tenant's budget for the period is spent.
func (s *Service) checkQuota(ctx context.Context, tenant string) error {
	b := s.key(tenant).Budget
	if !b.capped() {
		return nil
	}
	now := s.cfg.Now()
	sum, err := s.periodUsage(ctx, tenant, now)
	if err != nil {
		return err
	}
	if b.exhausted(sum) || s.poolExhausted(tenant, now) {
		return errQuota
	}
	return nil
}

// overQuota records the running batch's usage and reports whether its key's budget for
// the period the batch counts in is spent. A failure to read usage is logged and lets
// the batch go on.
func (s *Service) overQuota(ctx context.Context, rec *batchRecord) bool {
	s.recordUsage(ctx, rec)
	b := s.key(rec.Tenant).Budget
	if !b.capped() {
		return false
	}
	// The batch counts in the period it was created in; once that period is over, it
	// spends the current one's budget too.
	for _, t := range []time.Time{rec.countedAt(), s.cfg.Now()} {
		sum, err := s.periodUsage(ctx, rec.Tenant, t)
		if err != nil {
			s.cfg.Logger.Error("check budget", "batch", rec.ID, "err", err)
			return false
		}
		if b.exhausted(sum) {
			return true
		}
	}
	return false
}

// UsageReport is a key's usage in the current period of its budget (GET /v1/usage).
type UsageReport struct {
	Object      string       `json:"object"` // "usage"
	Key         string       `json:"key"`    // the key's name
	Period      Period       `json:"period"`
	PeriodStart int64        `json:"period_start"` // Unix seconds
	PeriodEnd   int64        `json:"period_end"`
	Usage       UsageFigures `json:"usage"`
	// Unconfirmed is what a server that did not end cleanly (a crash) may have spent
	// beyond what its ledgers recorded: it counts against the budget.
	Unconfirmed Unconfirmed `json:"unconfirmed"`
	// Batches counts the key's batches; Requests its online requests through the gateway,
	// and CacheHits those of them answered from its cache (at no cost).
	Batches   int64        `json:"batches"`
	Requests  int64        `json:"requests"`
	CacheHits int64        `json:"cache_hits"`
	Limits    *UsageLimits `json:"limits"`    // null: no budget
	Remaining *UsageLimits `json:"remaining"` // null: no budget
	Exhausted bool         `json:"exhausted"`
	ByUser    []UserUsage  `json:"by_user"`
}

// UsageFigures are tokens and their cost.
type UsageFigures struct {
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	CostUSD          float64 `json:"cost_usd"`
}

// Unconfirmed is spending the server could not confirm.
type Unconfirmed struct {
	Tokens  int64   `json:"tokens"`
	CostUSD float64 `json:"cost_usd"`
}

// UsageLimits are a budget's caps, or what is left of them; a null field is no cap.
type UsageLimits struct {
	CostUSD *float64 `json:"cost_usd"`
	Tokens  *int64   `json:"tokens"`
}

// UserUsage is the usage of the batches whose metadata "user" is User, and of the online
// requests whose "user" field is User ("" for none).
type UserUsage struct {
	User string `json:"user"`
	UsageFigures
	Batches   int64 `json:"batches"`
	Requests  int64 `json:"requests"`
	CacheHits int64 `json:"cache_hits"`
}

func figures(u sluice.Usage, cost float64) UsageFigures {
	return UsageFigures{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.Total(),
		CostUSD: math.Round(cost*1e6) / 1e6}
}

// Usage reports tenant's usage in the current period of its key's budget: figures, by
// user, limits, what remains, and spending a crashed server could not confirm.
func (s *Service) Usage(ctx context.Context, tenant string) (*UsageReport, error) {
	k := s.key(tenant)
	from, to := k.Budget.Bounds(s.cfg.Now())
	out := &UsageReport{Object: "usage", Key: k.Name, Period: PeriodMonthly, PeriodStart: from.Unix(), PeriodEnd: to.Unix(),
		ByUser: []UserUsage{}}
	if k.Budget.Period != "" {
		out.Period = k.Budget.Period
	}
	var sum usageTotal
	err := s.cfg.Store.SumUsage(ctx, tenant, true, from, to, func(_, _, user string, u sluice.Usage, cost float64, n, req, hits int64) error {
		out.ByUser = append(out.ByUser, UserUsage{User: user, UsageFigures: figures(u, cost), Batches: n, Requests: req, CacheHits: hits})
		sum.usage, sum.cost = sum.usage.Add(u), sum.cost+cost
		sum.batches, sum.requests, sum.cacheHits = sum.batches+n, sum.requests+req, sum.cacheHits+hits
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.Usage, out.Batches, out.Requests, out.CacheHits = figures(sum.usage, sum.cost), sum.batches, sum.requests, sum.cacheHits
	sum.unconfTokens, sum.unconfCost, err = s.cfg.Store.SumUnconfirmed(ctx, tenant, from, to)
	if err != nil {
		return nil, err
	}
	out.Unconfirmed = Unconfirmed{Tokens: sum.unconfTokens, CostUSD: math.Round(sum.unconfCost*1e6) / 1e6}
	if b := k.Budget; b.capped() {
		out.Limits, out.Remaining = &UsageLimits{}, &UsageLimits{}
		if b.MaxCost > 0 {
			left := math.Round(max(b.MaxCost-sum.spent(), 0)*1e6) / 1e6
			out.Limits.CostUSD, out.Remaining.CostUSD = &b.MaxCost, &left
		}
		if b.MaxTokens > 0 {
			left := max(b.MaxTokens-sum.tokens(), 0)
			out.Limits.Tokens, out.Remaining.Tokens = &b.MaxTokens, &left
		}
		out.Exhausted = b.exhausted(sum) || s.poolExhausted(tenant, s.cfg.Now())
	}
	return out, nil
}

// BudgetPool returns the spending pool of tenant's budget for the current period: the
// pool its batches spend from, so that other traffic of the key (an online gateway's
// requests) spends from it too. nil when the key has no budget.
func (s *Service) BudgetPool(ctx context.Context, tenant string) (*sluice.BudgetPool, error) {
	return s.budgetPool(ctx, tenant, s.cfg.Now())
}
