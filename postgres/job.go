package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	var seq int64
	err := s.pool.QueryRow(ctx, `INSERT INTO job (`+jobColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq`,
		job.ID, string(job.State), job.CreatedAt.UnixNano(), job.UpdatedAt.UnixNano(), job.Input, job.Fingerprint,
		blob(job.Options), job.Ingested, job.IngestDone, int64(job.Elapsed), job.Error).Scan(&seq)
	if isUniqueViolation(err) {
		return fmt.Errorf("create job %s: a job with this id exists", job.ID)
	}
	if err != nil {
		return fmt.Errorf("create job %s: %w", job.ID, err)
	}
	s.remember(job.ID, seq)
	return nil
}

// Job returns the job with the given id, or an error wrapping sluice.ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (*sluice.Job, error) {
	job, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM job WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
		q = `SELECT ` + jobColumns + ` FROM job WHERE fingerprint = $1 ORDER BY created_at DESC, seq DESC`
		args = append(args, fingerprint)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*sluice.Job, error) { return scanJob(row) })
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

// UpdateJob saves the job's State, Error, Elapsed, Ingested and IngestDone, and sets its
// UpdatedAt to now.
func (s *Store) UpdateJob(ctx context.Context, job *sluice.Job) error {
	now := time.Now()
	tag, err := s.pool.Exec(ctx, `UPDATE job SET state = $1, error = $2, elapsed = $3, ingested = $4,
		ingest_done = $5, updated_at = $6 WHERE id = $7`,
		string(job.State), job.Error, int64(job.Elapsed), job.Ingested, job.IngestDone, now.UnixNano(), job.ID)
	if err != nil {
		return fmt.Errorf("update job %s: %w", job.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update job %s: %w", job.ID, sluice.ErrNotFound)
	}
	job.UpdatedAt = now
	return nil
}

// scanJob reads a row of jobColumns.
func scanJob(row pgx.Row) (*sluice.Job, error) {
	var (
		job              sluice.Job
		state            string
		created, updated int64
		elapsed          int64
		options          []byte
	)
	if err := row.Scan(&job.ID, &state, &created, &updated, &job.Input, &job.Fingerprint, &options,
		&job.Ingested, &job.IngestDone, &elapsed, &job.Error); err != nil {
		return nil, err
	}
	job.State = sluice.JobState(state)
	job.CreatedAt = time.Unix(0, created)
	job.UpdatedAt = time.Unix(0, updated)
	if len(options) > 0 {
		job.Options = options
	}
	job.Elapsed = time.Duration(elapsed)
	return &job, nil
}
