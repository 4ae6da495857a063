package sqlite

import (
	"context"
	"fmt"
)

// DeleteJob deletes a job and everything its ledger holds: its requests, their inputs
// and answers, and its Batch API parts. It returns sluice.ErrNotFound for an unknown job.
// The space is kept for new rows until Compact gives it back.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	seq, err := s.jobSeq(ctx, id)
	if err != nil {
		return fmt.Errorf("delete job: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	lo, hi := rowID(seq, 0), rowID(seq+1, 0)
	for _, q := range []string{
		`DELETE FROM request_input WHERE id >= ? AND id < ?`,
		`DELETE FROM request_output WHERE id >= ? AND id < ?`,
		`DELETE FROM request WHERE id >= ? AND id < ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, lo, hi); err != nil {
			return fmt.Errorf("delete job %s: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM part WHERE job = ?`, seq); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM job WHERE seq = ?`, seq); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.jobs, id)
	s.mu.Unlock()
	return nil
}

// Compact gives the space of deleted rows back to the file system: it rewrites the
// database (VACUUM) and empties the write-ahead log. It needs as much free disk as the
// database takes, and blocks other writers while it runs.
func (s *Store) Compact(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("compact ledger: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("compact ledger: %w", err)
	}
	return nil
}
