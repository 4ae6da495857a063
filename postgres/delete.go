package postgres

import (
	"context"
	"fmt"
)

// DeleteJob deletes a job and everything its ledger holds: its requests, their inputs,
// answers and custom_ids, its Batch API parts and its workers, in one transaction. It returns
// sluice.ErrNotFound for an unknown job. PostgreSQL's vacuum gives the space back to new
// rows.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	seq, err := s.jobSeq(ctx, id)
	if err != nil {
		return fmt.Errorf("delete job: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	defer rollback(ctx, tx)
	for _, table := range []string{"request_input", "request_output", "request_custom_id", "request", "part", "worker"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE job = $1`, seq); err != nil {
			return fmt.Errorf("delete job %s: %w", id, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM job WHERE seq = $1`, seq); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.jobs, id)
	s.mu.Unlock()
	s.floors.forget(seq)
	return nil
}
