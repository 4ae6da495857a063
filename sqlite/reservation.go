package sqlite

import (
	"context"
	"fmt"
	"time"
)

// SaveReservation records the ceiling of a budget pool of sluice serve: session is the
// server run, owner the hash of the client key, period the start of the budget period;
// tokens and cost bound what the pool has spent plus what it has reserved, absolute,
// including the priorTokens and priorCost of unconfirmed spending it started with.
func (s *Store) SaveReservation(ctx context.Context, session, owner string, period time.Time,
	priorTokens int64, priorCost float64, tokens int64, cost float64) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO serve_reservation
		(session, owner, period_start, prior_tokens, prior_cost, tokens, cost, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (session, owner, period_start) DO UPDATE SET
			tokens = excluded.tokens, cost = excluded.cost, updated_at = excluded.updated_at`,
		session, owner, period.Unix(), priorTokens, priorCost, tokens, cost, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("save reservation: %w", err)
	}
	return nil
}

// Reservations calls fn with every recorded pool ceiling of sessions other than session.
func (s *Store) Reservations(ctx context.Context, session string,
	fn func(session, owner string, period time.Time, priorTokens int64, priorCost float64, tokens int64, cost float64) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT session, owner, period_start, prior_tokens, prior_cost, tokens, cost
		FROM serve_reservation WHERE session != ? ORDER BY session, owner, period_start`, session)
	if err != nil {
		return fmt.Errorf("reservations: %w", err)
	}
	type row struct {
		session, owner  string
		period, pt, tok int64
		priorCost, cost float64
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.session, &r.owner, &r.period, &r.pt, &r.priorCost, &r.tok, &r.cost); err != nil {
			rows.Close()
			return fmt.Errorf("reservations: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reservations: %w", err)
	}
	for _, r := range all { // fn may write: the rows are closed first
		if err := fn(r.session, r.owner, time.Unix(r.period, 0), r.pt, r.priorCost, r.tok, r.cost); err != nil {
			return err
		}
	}
	return nil
}

// SettleReservation replaces the ceiling of session's pool of owner for period with
// unconfirmed spending of tokens and cost (none when both are 0), in one transaction.
func (s *Store) SettleReservation(ctx context.Context, session, owner string, period time.Time, tokens int64, cost float64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("settle reservation: %w", err)
	}
	defer rollback(tx)
	if tokens > 0 || cost > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO serve_unconfirmed (owner, period_start, tokens, cost, session, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, owner, period.Unix(), tokens, cost, session, time.Now().Unix()); err != nil {
			return fmt.Errorf("settle reservation: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM serve_reservation WHERE session = ? AND owner = ? AND period_start = ?`,
		session, owner, period.Unix()); err != nil {
		return fmt.Errorf("settle reservation: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("settle reservation: %w", err)
	}
	return nil
}

// DeleteReservations drops the ceilings of session, a server run that ended with every
// answer in its ledgers.
func (s *Store) DeleteReservations(ctx context.Context, session string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM serve_reservation WHERE session = ?`, session); err != nil {
		return fmt.Errorf("delete reservations: %w", err)
	}
	return nil
}

// SumUnconfirmed sums owner's unconfirmed spending in the periods starting in [from, to).
func (s *Store) SumUnconfirmed(ctx context.Context, owner string, from, to time.Time) (tokens int64, cost float64, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(tokens), 0), COALESCE(SUM(cost), 0) FROM serve_unconfirmed
		WHERE owner = ? AND period_start >= ? AND period_start < ?`, owner, from.Unix(), to.Unix()).Scan(&tokens, &cost)
	if err != nil {
		return 0, 0, fmt.Errorf("sum unconfirmed: %w", err)
	}
	return tokens, cost, nil
}
