package postgres

import (
	"context"
	"fmt"

	"github.com/sluice-llm/sluice"
)

// sqlJobLockKey is the advisory lock key of job $1: a hash of the schema and the job's
// id, so that stores in different schemas of one database never share a key.
const sqlJobLockKey = `hashtextextended(current_schema() || '/' || $1::text, 1364066306)`

// LockJob takes the lock that lets one process at a time run a job (sluice run and
// resume; workers share a job without it): a session advisory lock on a connection of
// its own, held until unlock, or until the process or its connection dies, so that a
// killed process never leaves it held. A lock another session holds is ErrJobHeld.
func (s *Store) LockJob(ctx context.Context, jobID string) (unlock func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock job %s: %w", jobID, err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+sqlJobLockKey+`)`, jobID).Scan(&got); err != nil {
		conn.Release()
		return nil, fmt.Errorf("lock job %s: %w", jobID, err)
	}
	if !got {
		conn.Release()
		return nil, fmt.Errorf("lock job %s: %w", jobID, sluice.ErrJobHeld)
	}
	return func() {
		_, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+sqlJobLockKey+`)`, jobID)
		if err != nil {
			// A connection that could not unlock must not go back to the pool holding it.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}, nil
}

// JobHeld reports whether a process holds the job's lock (LockJob), or a live worker
// works the job (Heartbeat).
func (s *Store) JobHeld(ctx context.Context, jobID string) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("job held %s: %w", jobID, err)
	}
	defer rollback(ctx, tx)
	var free bool
	// The transaction's lock, if it gets one, ends with the rollback.
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(`+sqlJobLockKey+`)`, jobID).Scan(&free); err != nil {
		return false, fmt.Errorf("job held %s: %w", jobID, err)
	}
	if !free {
		return true, nil
	}
	live, err := s.liveWorkers(ctx, tx, jobID)
	if err != nil {
		return false, fmt.Errorf("job held %s: %w", jobID, err)
	}
	return live > 0, nil
}
