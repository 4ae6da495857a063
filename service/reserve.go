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

// ceiling is what one pool of a server session recorded (ReservationStore).
type ceiling struct {
	session, tenant     string
	period              time.Time
	priorTokens, tokens int64
	priorCost, cost     float64
}

// reconcile runs as the server starts, before any batch resumes, and on each tick of
// its keeper. It settles the ceilings that the pools of server sessions that ended
// (closed, or died: their session lease expired) recorded: what a ceiling exceeds the
// ledgers by may have been spent (answers lost with the process, requests sent and never
// recorded), and counts as unconfirmed spending of the key in that period from now on.
// Before, it records the usage of the unfinished batches, active, from their ledgers, so
// that it compares with what was really recorded, not with the last periodic reading.
// The ceilings of live replicas are left alone.
func (s *Service) reconcile(ctx context.Context, active []*batchRecord) error {
	ended, err := s.endedCeilings(ctx)
	if err != nil || len(ended) == 0 {
		return err
	}
	for _, rec := range active {
		s.recordUsage(ctx, rec)
	}
	for _, c := range ended {
		if err := s.settle(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// endedCeilings returns the ceilings of the sessions that ended, whose settling this
// server claimed (claimEnded).
func (s *Service) endedCeilings(ctx context.Context) ([]ceiling, error) {
	ended := map[string]bool{}
	var out []ceiling
	err := s.cfg.Store.Reservations(ctx, s.session, func(session, tenant string, period time.Time,
		priorTokens int64, priorCost float64, tokens int64, cost float64) error {
		done, seen := ended[session]
		if !seen {
			var err error
			if done, err = s.claimEnded(ctx, session); err != nil {
				return err
			}
			ended[session] = done
		}
		if done { // else a live replica's, or another server settles it
			out = append(out, ceiling{session, tenant, period, priorTokens, tokens, priorCost, cost})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile budgets: %w", err)
	}
	return out, nil
}

// settle turns what c exceeds the ledgers by into unconfirmed spending.
func (s *Service) settle(ctx context.Context, c ceiling) error {
	_, to := s.key(c.tenant).Budget.Bounds(c.period)
	var recorded usageTotal
	err := s.cfg.Store.SumUsage(ctx, c.tenant, false, c.period, to, func(_, _, _ string, u sluice.Usage, cost float64, _, _, _ int64) error {
		recorded = usageTotal{usage: u, cost: cost}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reconcile budgets: %w", err)
	}
	lostTokens := max(c.tokens-c.priorTokens-recorded.usage.Total(), 0)
	lostCost := max(c.cost-c.priorCost-recorded.cost, 0)
	if lostTokens > 0 || lostCost > 0 {
		s.cfg.Logger.Warn("budget: a previous server ended without recording all it may have spent; counted as unconfirmed",
			"key", s.key(c.tenant).Name, "tokens", lostTokens, "cost_usd", lostCost)
	}
	if err := s.cfg.Store.SettleReservation(ctx, c.session, c.tenant, c.period, lostTokens, lostCost); err != nil {
		return fmt.Errorf("reconcile budgets: %w", err)
	}
	return nil
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
// its ledger and its usage recorded, and its session lease.
func (s *Service) endSession(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var err error
	if e := s.cfg.Store.DeleteReservations(ctx, s.session); e != nil && !errors.Is(e, context.Canceled) {
		err = fmt.Errorf("serve: close: %w", e)
	}
	// The session has ended: what ceilings it could not drop another server settles.
	if e := s.cfg.Store.ReleaseLease(ctx, kindSession, s.session, s.session); e != nil {
		err = errors.Join(err, fmt.Errorf("serve: close: %w", e))
	}
	return err
}
