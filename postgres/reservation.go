package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SaveReservation records the ceiling of a budget pool of sluice serve: session is the
// server run, owner the hash of the client key, period the start of the budget period;
// tokens and cost bound what the pool has spent plus what it has reserved, absolute,
// including the priorTokens and priorCost of unconfirmed spending it started with.
func (s *Store) SaveReservation(ctx context.Context, session, owner string, period time.Time,
	priorTokens int64, priorCost float64, tokens int64, cost float64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO serve_reservation
		(session, owner, period_start, prior_tokens, prior_cost, tokens, cost, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
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
	rows, err := s.pool.Query(ctx, `SELECT session, owner, period_start, prior_tokens, prior_cost, tokens, cost
		FROM serve_reservation WHERE session <> $1 ORDER BY session, owner, period_start`, session)
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if tokens > 0 || cost > 0 {
			b.Queue(`INSERT INTO serve_unconfirmed (owner, period_start, tokens, cost, session, created_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, owner, period.Unix(), tokens, cost, session, time.Now().Unix())
		}
		b.Queue(`DELETE FROM serve_reservation WHERE session = $1 AND owner = $2 AND period_start = $3`,
			session, owner, period.Unix())
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("settle reservation: %w", err)
	}
	return nil
}

// DeleteReservations drops the ceilings of session, a server run that ended with every
// answer in its ledgers.
func (s *Store) DeleteReservations(ctx context.Context, session string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM serve_reservation WHERE session = $1`, session); err != nil {
		return fmt.Errorf("delete reservations: %w", err)
	}
	return nil
}

// SumUnconfirmed sums owner's unconfirmed spending in the periods starting in [from, to).
func (s *Store) SumUnconfirmed(ctx context.Context, owner string, from, to time.Time) (tokens int64, cost float64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT COALESCE(SUM(tokens), 0)::bigint, COALESCE(SUM(cost), 0) FROM serve_unconfirmed
		WHERE owner = $1 AND period_start >= $2 AND period_start < $3`, owner, from.Unix(), to.Unix()).Scan(&tokens, &cost)
	if err != nil {
		return 0, 0, fmt.Errorf("sum unconfirmed: %w", err)
	}
	return tokens, cost, nil
}
