package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

// partColumns are the columns of a part as scanPart reads them.
const partColumns = `number, round, endpoint, model, requests, bytes, file_id, batch_id, status,
	count_total, count_completed, count_failed, output_file_id, error_file_id, error, collected,
	usage_prompt, usage_completion, usage_cached, created_at, updated_at`

// The statements of parts.
const (
	sqlInsertPart = `INSERT INTO part (job, ` + partColumns + `)
		VALUES ($1, (SELECT COALESCE(MAX(number), 0) + 1 FROM part WHERE job = $1),
			$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
		RETURNING number`
	sqlHoldLines = `UPDATE request SET state = 1, owner = $1, lease_until = ` + sqlNeverExpires + `
		WHERE job = $2 AND line = ANY($3) AND state = 0`
	sqlUpdatePart = `UPDATE part SET file_id = $1, batch_id = $2, status = $3, count_total = $4, count_completed = $5,
			count_failed = $6, output_file_id = $7, error_file_id = $8, error = $9, collected = $10, updated_at = $11
		WHERE job = $12 AND number = $13`
	sqlParts        = `SELECT ` + partColumns + ` FROM part WHERE job = $1 ORDER BY number`
	sqlAddPartUsage = `UPDATE part SET usage_prompt = usage_prompt + $1, usage_completion = usage_completion + $2,
			usage_cached = usage_cached + $3
		WHERE job = $4 AND number = $5`

	// sqlItems begins a query of a job's requests as items (itemColumns); the conditions
	// that complete it end with "r.line > $n ORDER BY r.line LIMIT $n+1", for items.
	sqlItems = `SELECT ` + itemColumns + `
		FROM request AS r JOIN request_input AS i ON i.job = r.job AND i.line = r.line
		WHERE r.job = $1 AND `
	sqlPendingItems = sqlItems + `r.state = 0 AND r.line > $2 ORDER BY r.line LIMIT $3`
	sqlPartItems    = sqlItems + `r.owner = $2 AND r.state = 1 AND r.lease_until = ` + sqlNeverExpires + `
		AND r.line > $3 ORDER BY r.line LIMIT $4`
)

// partOwner is the owner the requests of part number are in flight under.
func partOwner(number int) string { return (&sluice.Part{Number: number}).Owner() }

// CreatePart stores p as the next part of job p.JobID and, in the same transaction,
// holds lines for it: they go in flight under p.Owner() with a lease that never expires.
// A line that is not pending (or listed twice) fails the whole call and nothing is
// stored. On success p's Number is set, and its CreatedAt, when zero, to now and its
// UpdatedAt, when zero, to CreatedAt.
func (s *Store) CreatePart(ctx context.Context, p *sluice.Part, lines []int64) error {
	seq, err := s.jobSeq(ctx, p.JobID)
	if err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	for _, line := range lines {
		if line < 1 || line > MaxLine {
			return fmt.Errorf("create part: line %d out of range [1, %d]", line, int64(MaxLine))
		}
	}
	created, updated := p.CreatedAt, p.UpdatedAt
	if created.IsZero() {
		created = time.Now()
	}
	if updated.IsZero() {
		updated = created
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	defer rollback(ctx, tx)
	// Two processes numbering parts of one job at once would pick the same number.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockJob, int32(seq)); err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	var number int
	if err := tx.QueryRow(ctx, sqlInsertPart, seq, p.Round, p.Endpoint, p.Model, p.Requests, p.Bytes,
		p.FileID, p.BatchID, string(p.Status), p.Counts.Total, p.Counts.Completed, p.Counts.Failed,
		p.OutputFileID, p.ErrorFileID, p.Error, p.Collected,
		p.Usage.PromptTokens, p.Usage.CompletionTokens, p.Usage.CachedTokens,
		created.UnixNano(), updated.UnixNano()).Scan(&number); err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	tag, err := tx.Exec(ctx, sqlHoldLines, partOwner(number), seq, lines)
	if err != nil {
		return fmt.Errorf("create part %d: %w", number, err)
	}
	if tag.RowsAffected() != int64(len(lines)) {
		return fmt.Errorf("create part %d: %d of its %d lines are pending", number, tag.RowsAffected(), len(lines))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create part %d: %w", number, err)
	}
	p.Number, p.CreatedAt, p.UpdatedAt = number, created, updated
	return nil
}

// UpdatePart saves p's FileID, BatchID, Status, Counts, OutputFileID, ErrorFileID, Error
// and Collected, and sets its UpdatedAt to now; its other fields are never changed. A part
// not in the ledger is an error wrapping sluice.ErrNotFound.
func (s *Store) UpdatePart(ctx context.Context, p *sluice.Part) error {
	seq, err := s.jobSeq(ctx, p.JobID)
	if err != nil {
		return fmt.Errorf("update part %d: %w", p.Number, err)
	}
	now := time.Now()
	c := &p.Counts
	tag, err := s.pool.Exec(ctx, sqlUpdatePart, p.FileID, p.BatchID, string(p.Status), c.Total, c.Completed,
		c.Failed, p.OutputFileID, p.ErrorFileID, p.Error, p.Collected, now.UnixNano(), seq, p.Number)
	if err != nil {
		return fmt.Errorf("update part %d: %w", p.Number, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update part %d of job %s: %w", p.Number, p.JobID, sluice.ErrNotFound)
	}
	p.UpdatedAt = now
	return nil
}

// Parts returns the job's parts in Number order (none: an empty slice).
func (s *Store) Parts(ctx context.Context, jobID string) ([]*sluice.Part, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("list parts: %w", err)
	}
	rows, _ := s.pool.Query(ctx, sqlParts, seq)
	parts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*sluice.Part, error) {
		p, err := scanPart(row)
		if p != nil {
			p.JobID = jobID
		}
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list parts: %w", err)
	}
	if parts == nil {
		parts = []*sluice.Part{}
	}
	return parts, nil
}

// scanPart reads a row of partColumns.
func scanPart(row pgx.Row) (*sluice.Part, error) {
	var (
		p                sluice.Part
		status           string
		created, updated int64
	)
	c, u := &p.Counts, &p.Usage
	if err := row.Scan(&p.Number, &p.Round, &p.Endpoint, &p.Model, &p.Requests, &p.Bytes, &p.FileID, &p.BatchID,
		&status, &c.Total, &c.Completed, &c.Failed, &p.OutputFileID, &p.ErrorFileID, &p.Error, &p.Collected,
		&u.PromptTokens, &u.CompletionTokens, &u.CachedTokens, &created, &updated); err != nil {
		return nil, err
	}
	p.Status = sluice.BatchStatus(status)
	p.CreatedAt, p.UpdatedAt = time.Unix(0, created), time.Unix(0, updated)
	return &p, nil
}

// Pending calls fn for every pending request of the job with Line > after, in line
// order, until fn returns an error (which Pending returns) or limit requests were given
// (limit <= 0: no limit). Like Results, it reads a page at a time.
func (s *Store) Pending(ctx context.Context, jobID string, after int64, limit int, fn func(*sluice.Item) error) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("read pending requests: %w", err)
	}
	return s.items(ctx, "read pending requests", sqlPendingItems, []any{seq}, after, limit, fn)
}

// PartItems calls fn, in line order, for every request part number of the job holds (in
// flight under its owner), until fn returns an error (which PartItems returns). Like
// Results, it reads a page at a time.
func (s *Store) PartItems(ctx context.Context, jobID string, number int, fn func(*sluice.Item) error) error {
	op := fmt.Sprintf("read requests of part %d", number)
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.items(ctx, op, sqlPartItems, []any{seq, partOwner(number)}, 0, 0, fn)
}

// CompletePart records outcomes for requests part number of the job holds, as Complete
// does for the part's owner, and adds the Usage of those it records done to the part's
// Usage, in one transaction. Outcomes for requests the part does not hold (another
// part's, or ones recorded final before) are ignored, so recording the same outcomes
// twice changes nothing. Outcomes for a part not in the ledger are an error wrapping
// sluice.ErrNotFound.
func (s *Store) CompletePart(ctx context.Context, jobID string, number int, outcomes []sluice.Outcome) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	if len(outcomes) == 0 {
		return nil
	}
	b, err := newBatch(outcomes)
	if err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	if b.released > 0 {
		defer s.floors.lower(seq, b.released)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	defer rollback(ctx, tx)
	applied, err := b.exec(ctx, tx, seq, partOwner(number))
	if err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	var u sluice.Usage
	for _, line := range applied {
		if d, ok := b.done[line]; ok {
			u = u.Add(d)
		}
	}
	tag, err := tx.Exec(ctx, sqlAddPartUsage, u.PromptTokens, u.CompletionTokens, u.CachedTokens, seq, number)
	if err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("complete part %d of job %s: %w", number, jobID, sluice.ErrNotFound)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	return nil
}
