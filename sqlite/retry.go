package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

var _ sluice.FailedRetrier = (*Store)(nil)

// RetryFailed returns a job's failed requests to pending, with no attempts spent and no
// answer, and the job to running, in one transaction; it returns how many it returned.
// Done requests are untouched, and so are lines that were never sent (invalid lines and
// duplicate custom_ids: sending them again would fail the same way).
func (s *Store) RetryFailed(ctx context.Context, jobID string) (int64, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	defer rollback(tx)
	first, last := jobRows(seq)
	if _, err := tx.ExecContext(ctx, `UPDATE request_output SET request_id = '', body = NULL, error_message = ''
		WHERE id IN (SELECT id FROM request WHERE id BETWEEN ? AND ? AND state = 3 AND holds_id = 1)`, first, last); err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE request SET state = 0, attempts = 0, throttled = 0, owner = NULL,
			lease_until = NULL, status_code = 0, error_code = '', latency = 0, finished_at = NULL
		WHERE id BETWEEN ? AND ? AND state = 3 AND holds_id = 1`, first, last)
	if err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	if n > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE job SET state = ?, error = '', updated_at = ? WHERE seq = ?`,
			string(sluice.JobRunning), time.Now().UnixNano(), seq); err != nil {
			return 0, fmt.Errorf("retry failed requests: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	return n, nil
}
