package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ids"
)

// ReservationStore keeps what budget pools have reserved, so that budgets hold across a
// crash (sqlite.Store implements it). A pool records a ceiling on what it spent plus
// what it reserved before it sends past the last one; a server that starts turns what
// the ceilings of a run that did not end cleanly exceed the ledgers by into unconfirmed
// spending, which counts against the key's budget.
type ReservationStore interface {
	// SaveReservation records the ceiling of session's pool of tenant for the period
	// starting at period: tokens and cost, absolute, including the priorTokens and
	// priorCost of unconfirmed spending the pool started with.
	SaveReservation(ctx context.Context, session, tenant string, period time.Time,
		priorTokens int64, priorCost float64, tokens int64, cost float64) error
	// Reservations calls fn with the ceilings of every session but session.
	Reservations(ctx context.Context, session string,
		fn func(session, tenant string, period time.Time, priorTokens int64, priorCost float64, tokens int64, cost float64) error) error
	// SettleReservation replaces a ceiling with unconfirmed spending (none when 0).
	SettleReservation(ctx context.Context, session, tenant string, period time.Time, tokens int64, cost float64) error
	// DeleteReservations drops the ceilings of session.
	DeleteReservations(ctx context.Context, session string) error
	// SumUnconfirmed sums tenant's unconfirmed spending in periods starting in [from, to).
	SumUnconfirmed(ctx context.Context, tenant string, from, to time.Time) (tokens int64, cost float64, err error)
}

// newSession names a server run in the reservations.
func newSession() string { return ids.Hex(8) }

// reconcile runs before any batch resumes. It records the usage of the batches a
// previous server left running from their ledgers (so that budgets start from what was
// really recorded, not from the last periodic reading), then settles the ceilings that
// server's pools recorded: what a ceiling exceeds the ledgers by may have been spent
// (answers lost with the process, requests sent and never recorded), and counts as
// unconfirmed spending of the key in that period from now on.
func (s *Service) reconcile(ctx context.Context, active []*batchRecord) error {
	for _, rec := range active {
		s.recordUsage(ctx, rec)
	}
	return s.cfg.Store.Reservations(ctx, s.session, func(session, tenant string, period time.Time,
		priorTokens int64, priorCost float64, tokens int64, cost float64) error {
		_, to := s.key(tenant).Budget.Bounds(period)
		var recorded usageTotal
		err := s.cfg.Store.SumUsage(ctx, tenant, false, period, to, func(_, _, _ string, u sluice.Usage, c float64, n int64) error {
			recorded = usageTotal{usage: u, cost: c, batches: n}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reconcile budgets: %w", err)
		}
		lostTokens := max(tokens-priorTokens-recorded.usage.Total(), 0)
		lostCost := max(cost-priorCost-recorded.cost, 0)
		if lostTokens > 0 || lostCost > 0 {
			s.cfg.Logger.Warn("budget: a previous server ended without recording all it may have spent; counted as unconfirmed",
				"key", s.key(tenant).Name, "tokens", lostTokens, "cost_usd", lostCost)
		}
		if err := s.cfg.Store.SettleReservation(ctx, session, tenant, period, lostTokens, lostCost); err != nil {
			return fmt.Errorf("reconcile budgets: %w", err)
		}
		return nil
	})
}

// journal returns the function a pool of tenant's for the period starting at from records
// its ceilings with.
func (s *Service) journal(tenant string, from time.Time, prior usageTotal) func(cost float64, tokens int64) error {
	return func(cost float64, tokens int64) error {
		err := s.cfg.Store.SaveReservation(context.WithoutCancel(s.ctx), s.session, tenant, from,
			prior.unconfTokens, prior.unconfCost, tokens, cost)
		if err != nil {
			s.cfg.Logger.Error("record budget reservation", "key", s.key(tenant).Name, "err", err)
		}
		return err
	}
}

// endSession drops this server's ceilings once every run has ended with its answers in
// its ledger and its usage recorded.
func (s *Service) endSession(ctx context.Context) error {
	if err := s.cfg.Store.DeleteReservations(context.WithoutCancel(ctx), s.session); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve: close: %w", err)
	}
	return nil
}
