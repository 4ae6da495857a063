package postgres

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
// duplicate custom_ids, which hold no custom_id of the job: sending them again would
// fail the same way).
func (s *Store) RetryFailed(ctx context.Context, jobID string) (int64, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	defer rollback(ctx, tx)
	// The lines to retry: failed, and holding their custom_id (so once sent).
	const retried = `SELECT r.line FROM request r JOIN request_custom_id c ON c.job = r.job AND c.line = r.line
		WHERE r.job = $1 AND r.state = 3`
	if _, err := tx.Exec(ctx, `UPDATE request_output SET request_id = '', body = NULL, error_message = ''
		WHERE job = $1 AND line IN (`+retried+`)`, seq); err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE request SET state = 0, attempts = 0, throttled = 0, owner = NULL,
			lease_until = NULL, status_code = 0, error_code = '', latency = 0, finished_at = NULL
		WHERE job = $1 AND line IN (`+retried+`)`, seq)
	if err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	n := tag.RowsAffected()
	if n > 0 {
		if _, err := tx.Exec(ctx, `UPDATE job SET state = $1, error = '', updated_at = $2 WHERE seq = $3`,
			string(sluice.JobRunning), time.Now().UnixNano(), seq); err != nil {
			return 0, fmt.Errorf("retry failed requests: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("retry failed requests: %w", err)
	}
	s.floors.forget(seq) // the retried lines lie below where claims start
	return n, nil
}
