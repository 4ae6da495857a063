package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

const jobColumns = `id, state, created_at, updated_at, input, fingerprint, options,
	ingested, ingest_done, elapsed, error`

// CreateJob stores a new job. A zero CreatedAt is set to now, and a zero UpdatedAt to
// CreatedAt, in job too.
func (s *Store) CreateJob(ctx context.Context, job *sluice.Job) error {
	if job.ID == "" {
		return errors.New("create job: empty id")
	}
	if job.CreatedAt.IsZero() {
		job.CreatedAt = time.Now()
	}
	if job.UpdatedAt.IsZero() {
		job.UpdatedAt = job.CreatedAt
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO job (`+jobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		job.ID, string(job.State), job.CreatedAt.UnixNano(), job.UpdatedAt.UnixNano(), job.Input, job.Fingerprint,
		blob(job.Options), job.Ingested, job.IngestDone, int64(job.Elapsed), job.Error)
	if isUniqueViolation(err) {
		return fmt.Errorf("create job %s: a job with this id exists", job.ID)
	}
	if err != nil {
		return fmt.Errorf("create job %s: %w", job.ID, err)
	}
	if seq, err := res.LastInsertId(); err == nil {
		s.remember(job.ID, seq)
	}
	return nil
}

// Job returns the job with the given id, or an error wrapping sluice.ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (*sluice.Job, error) {
	job, err := scanJob(s.r.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM job WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = sluice.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	return job, nil
}

// Jobs lists jobs, newest first. A non-empty fingerprint lists only jobs with it.
func (s *Store) Jobs(ctx context.Context, fingerprint string) ([]*sluice.Job, error) {
	q := `SELECT ` + jobColumns + ` FROM job ORDER BY created_at DESC, seq DESC`
	var args []any
	if fingerprint != "" {
		q = `SELECT ` + jobColumns + ` FROM job WHERE fingerprint = ? ORDER BY created_at DESC, seq DESC`
		args = append(args, fingerprint)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var jobs []*sluice.Job
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		jobs = append(jobs, job)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

// UpdateJob saves the job's State, Error, Elapsed, Ingested and IngestDone, and sets its
// UpdatedAt to now.
func (s *Store) UpdateJob(ctx context.Context, job *sluice.Job) error {
	now := time.Now()
	res, err := s.w.ExecContext(ctx, `UPDATE job SET state = ?, error = ?, elapsed = ?, ingested = ?, ingest_done = ?,
		updated_at = ? WHERE id = ?`,
		string(job.State), job.Error, int64(job.Elapsed), job.Ingested, job.IngestDone, now.UnixNano(), job.ID)
	if err != nil {
		return fmt.Errorf("update job %s: %w", job.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update job %s: %w", job.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("update job %s: %w", job.ID, sluice.ErrNotFound)
	}
	job.UpdatedAt = now
	return nil
}

// scanJob reads a row of jobColumns.
func scanJob(row interface{ Scan(...any) error }) (*sluice.Job, error) {
	var (
		job                sluice.Job
		state              string
		created, updated   int64
		elapsed            int64
		ingestDone         bool
		options            []byte
		input, fingerprint string
	)
	if err := row.Scan(&job.ID, &state, &created, &updated, &input, &fingerprint, &options,
		&job.Ingested, &ingestDone, &elapsed, &job.Error); err != nil {
		return nil, err
	}
	job.State = sluice.JobState(state)
	job.CreatedAt = time.Unix(0, created)
	job.UpdatedAt = time.Unix(0, updated)
	job.Input, job.Fingerprint = input, fingerprint
	if len(options) > 0 {
		job.Options = options
	}
	job.IngestDone = ingestDone
	job.Elapsed = time.Duration(elapsed)
	return &job, nil
}
