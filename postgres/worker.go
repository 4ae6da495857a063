package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-llm/sluice"
)

var _ sluice.WorkerRegistry = (*Store)(nil)

// sqlLiveWorkers counts the workers of job $1 live at $2.
const sqlLiveWorkers = `SELECT count(*) FROM worker WHERE job = $1 AND expires_at > $2`

// Heartbeat records that owner works the job until now+ttl, forgets workers that expired
// before now, returning the requests they held in flight to pending (as Release does:
// they may have been answered, so a claim of them counts as re-paid), and returns how
// many workers are live at now, owner included. So a killed worker's requests go back
// to pending a few heartbeats after it died, not when their leases expire.
func (s *Store) Heartbeat(ctx context.Context, jobID, owner string, now time.Time, ttl time.Duration) (int, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO worker (job, owner, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (job, owner) DO UPDATE SET expires_at = excluded.expires_at`, seq, owner, now.Add(ttl).UnixNano())
	var released int64
	b.Queue(`WITH gone AS (DELETE FROM worker WHERE job = $1 AND expires_at <= $2 RETURNING owner)
		UPDATE request SET state = 0, owner = NULL, lease_until = NULL, orphaned = true
		WHERE job = $1 AND state = 1 AND lease_until <> `+sqlNeverExpires+` AND owner IN (SELECT owner FROM gone)`,
		seq, now.UnixNano()).Exec(func(ct pgconn.CommandTag) error { released = ct.RowsAffected(); return nil })
	var live int
	b.Queue(sqlLiveWorkers, seq, now.UnixNano()).QueryRow(func(row pgx.Row) error { return row.Scan(&live) })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	if released > 0 {
		s.floors.lower(seq, 1) // released lines may lie below where claims start looking
	}
	return live, nil
}

// Leave removes owner from the job's workers.
func (s *Store) Leave(ctx context.Context, jobID, owner string) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("leave job: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM worker WHERE job = $1 AND owner = $2`, seq, owner); err != nil {
		return fmt.Errorf("leave job: %w", err)
	}
	return nil
}

// liveWorkers counts the job's workers live now.
func (s *Store) liveWorkers(ctx context.Context, q pgx.Tx, jobID string) (int, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return 0, err
	}
	var n int
	err = q.QueryRow(ctx, sqlLiveWorkers, seq, time.Now().UnixNano()).Scan(&n)
	return n, err
}

// ReleaseDead returns to pending the requests in flight under owners that are not live
// workers of the job at now, as Release does for each: the leases a killed process left
// behind, which would otherwise wait out their expiry. Parts' requests (sluice batch)
// are left alone.
func (s *Store) ReleaseDead(ctx context.Context, jobID string, now time.Time) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("release dead workers' requests: %w", err)
	}
	defer s.floors.lower(seq, 1)
	_, err = s.pool.Exec(ctx, `UPDATE request SET state = 0, owner = NULL, lease_until = NULL, orphaned = true
		WHERE job = $1 AND state = 1 AND lease_until <> `+sqlNeverExpires+`
		AND owner NOT IN (SELECT owner FROM worker WHERE job = $1 AND expires_at > $2)`, seq, now.UnixNano())
	if err != nil {
		return fmt.Errorf("release dead workers' requests: %w", err)
	}
	return nil
}

// PublishLimits records the rate limits a worker of the job learned from the upstream's
// headers (per minute; 0 leaves a limit as it was).
func (s *Store) PublishLimits(ctx context.Context, jobID string, rpm, tpm float64) error {
	_, err := s.pool.Exec(ctx, `UPDATE job SET
		learned_rpm = CASE WHEN $2 > 0 THEN $2 ELSE learned_rpm END,
		learned_tpm = CASE WHEN $3 > 0 THEN $3 ELSE learned_tpm END WHERE id = $1`, jobID, rpm, tpm)
	if err != nil {
		return fmt.Errorf("publish limits: %w", err)
	}
	return nil
}

// SharedLimits returns the rate limits the job's workers learned (PublishLimits).
func (s *Store) SharedLimits(ctx context.Context, jobID string) (rpm, tpm float64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT learned_rpm, learned_tpm FROM job WHERE id = $1`, jobID).Scan(&rpm, &tpm)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, fmt.Errorf("shared limits: job %s: %w", jobID, sluice.ErrNotFound)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("shared limits: %w", err)
	}
	return rpm, tpm, nil
}

// ReserveBudget commits add more of the job's budget, starting from base when nothing is
// committed yet, if the committed total stays within limit (a zero field: no cap); ok
// is false, and nothing is committed, when it would not.
func (s *Store) ReserveBudget(ctx context.Context, jobID string, base, add sluice.Spend, limit sluice.Budget) (bool, error) {
	const eps = 1e-9 // sums of prices in floating point
	ct, err := s.pool.Exec(ctx, `UPDATE job SET
		budget_cost = COALESCE(budget_cost, $2) + $4, budget_tokens = COALESCE(budget_tokens, $3) + $5
		WHERE id = $1 AND ($6 <= 0 OR COALESCE(budget_cost, $2) + $4 <= $6 + $8)
		AND ($7 <= 0 OR COALESCE(budget_tokens, $3) + $5 <= $7)`,
		jobID, base.Cost, base.Tokens, add.Cost, add.Tokens, limit.MaxCost, limit.MaxTokens, eps)
	if err != nil {
		return false, fmt.Errorf("reserve budget: %w", err)
	}
	return ct.RowsAffected() == 1, nil
}

// ReturnBudget gives back what a worker committed and did not spend.
func (s *Store) ReturnBudget(ctx context.Context, jobID string, give sluice.Spend) error {
	_, err := s.pool.Exec(ctx, `UPDATE job SET budget_cost = budget_cost - $2, budget_tokens = budget_tokens - $3
		WHERE id = $1 AND budget_cost IS NOT NULL`, jobID, give.Cost, give.Tokens)
	if err != nil {
		return fmt.Errorf("return budget: %w", err)
	}
	return nil
}

// ResetBudget forgets what was committed of the job's budget when no worker is live at
// now (what crashed workers committed and never spent), so that the next reservation
// starts again from the ledger's spending.
func (s *Store) ResetBudget(ctx context.Context, jobID string, now time.Time) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("reset budget: %w", err)
	}
	_, err = s.pool.Exec(ctx, `UPDATE job SET budget_cost = NULL, budget_tokens = NULL
		WHERE seq = $1 AND NOT EXISTS (SELECT 1 FROM worker WHERE job = $1 AND expires_at > $2)`, seq, now.UnixNano())
	if err != nil {
		return fmt.Errorf("reset budget: %w", err)
	}
	return nil
}

var _ sluice.BudgetLedger = (*Store)(nil)
