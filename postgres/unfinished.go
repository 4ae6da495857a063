package postgres

import (
	"context"
	"fmt"
)

// sqlUnfinished asks for a pending and an in-flight request of job $1, each through its
// partial index (request_pending, request_leased): a look-up, not a scan of the job.
const sqlUnfinished = `SELECT
		EXISTS (SELECT 1 FROM request WHERE job = $1 AND state = 0),
		EXISTS (SELECT 1 FROM request WHERE job = $1 AND state = 1)`

// Unfinished reports whether the job has a pending request and whether it has one in
// flight.
func (s *Store) Unfinished(ctx context.Context, jobID string) (pending, inFlight bool, err error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return false, false, fmt.Errorf("unfinished requests: %w", err)
	}
	if err := s.pool.QueryRow(ctx, sqlUnfinished, seq).Scan(&pending, &inFlight); err != nil {
		return false, false, fmt.Errorf("unfinished requests: %w", err)
	}
	return pending, inFlight, nil
}
