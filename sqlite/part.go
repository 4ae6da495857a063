package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/sluice-llm/sluice"
)

// The lease of a request a part holds: one that never expires, so that no claim of
// expired leases takes it. Queries spell it out as a literal, sqlNeverExpires, so that
// SQLite can use the partial index request_part, which is on it.
const (
	neverExpires    = math.MaxInt64
	sqlNeverExpires = "9223372036854775807"
)

// partColumns are the columns of a part as scanPart reads them.
const partColumns = `number, round, endpoint, model, requests, bytes, file_id, batch_id, status,
	count_total, count_completed, count_failed, output_file_id, error_file_id, error, collected,
	usage_prompt, usage_completion, usage_cached, created_at, updated_at`

// The statements of parts.
const (
	sqlInsertPart = `INSERT INTO part (job, ` + partColumns + `)
		VALUES (?, (SELECT COALESCE(MAX(number), 0) + 1 FROM part WHERE job = ?),
			?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING number`
	// sqlHoldLines is sqlClaimMark for pending lines only.
	sqlHoldLines  = sqlClaimMark + ` AND state = 0`
	sqlUpdatePart = `UPDATE part SET file_id = ?, batch_id = ?, status = ?, count_total = ?, count_completed = ?,
			count_failed = ?, output_file_id = ?, error_file_id = ?, error = ?, collected = ?, updated_at = ?
		WHERE job = ? AND number = ?`
	sqlParts        = `SELECT ` + partColumns + ` FROM part WHERE job = ? ORDER BY number`
	sqlAddPartUsage = `UPDATE part SET usage_prompt = usage_prompt + ?, usage_completion = usage_completion + ?,
			usage_cached = usage_cached + ?
		WHERE job = ? AND number = ?`

	// sqlItems begins a query of a job's requests as items (requestColumns); the
	// conditions that complete it end with "r.line > ? ORDER BY r.line LIMIT +?", for
	// items, which runs the statement once a page (preparedLimit).
	sqlItems = `SELECT ` + requestColumns + `
		FROM request AS r CROSS JOIN request_input AS i
		WHERE i.id = r.id AND r.job = ? AND `
	sqlPendingItems = sqlItems + `r.state = 0 AND r.line > ?
		ORDER BY r.line ` + preparedLimit
	sqlPartItems = sqlItems + `r.owner = ? AND r.state = 1 AND r.lease_until = ` + sqlNeverExpires + ` AND r.line > ?
		ORDER BY r.line ` + preparedLimit
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
	ids := make([]int64, len(lines))
	for i, line := range lines {
		if line < 1 || line > MaxLine {
			return fmt.Errorf("create part: line %d out of range [1, %d]", line, int64(MaxLine))
		}
		ids[i] = rowID(seq, line)
	}
	created, updated := p.CreatedAt, p.UpdatedAt
	if created.IsZero() {
		created = time.Now()
	}
	if updated.IsZero() {
		updated = created
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	defer rollback(tx)
	var number int
	if err := tx.QueryRowContext(ctx, sqlInsertPart, seq, seq, p.Round, p.Endpoint, p.Model, p.Requests, p.Bytes,
		p.FileID, p.BatchID, string(p.Status), p.Counts.Total, p.Counts.Completed, p.Counts.Failed,
		p.OutputFileID, p.ErrorFileID, p.Error, p.Collected,
		p.Usage.PromptTokens, p.Usage.CompletionTokens, p.Usage.CachedTokens,
		created.UnixNano(), updated.UnixNano()).Scan(&number); err != nil {
		return fmt.Errorf("create part: %w", err)
	}
	res, err := tx.ExecContext(ctx, sqlHoldLines, partOwner(number), neverExpires, idList(ids))
	if err != nil {
		return fmt.Errorf("create part %d: %w", number, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("create part %d: %w", number, err)
	}
	if n != int64(len(lines)) {
		return fmt.Errorf("create part %d: %d of its %d lines are pending", number, n, len(lines))
	}
	if err := tx.Commit(); err != nil {
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
	res, err := s.w.ExecContext(ctx, sqlUpdatePart, p.FileID, p.BatchID, string(p.Status), c.Total, c.Completed,
		c.Failed, p.OutputFileID, p.ErrorFileID, p.Error, p.Collected, now.UnixNano(), seq, p.Number)
	if err != nil {
		return fmt.Errorf("update part %d: %w", p.Number, err)
	}
	if err := found(res); err != nil {
		return fmt.Errorf("update part %d of job %s: %w", p.Number, p.JobID, err)
	}
	p.UpdatedAt = now
	return nil
}

// found is nil when res changed a row, and sluice.ErrNotFound when it changed none.
func found(res sql.Result) error {
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = sluice.ErrNotFound
	}
	return err
}

// Parts returns the job's parts in Number order (none: an empty slice).
func (s *Store) Parts(ctx context.Context, jobID string) ([]*sluice.Part, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("list parts: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, sqlParts, seq)
	if err != nil {
		return nil, fmt.Errorf("list parts: %w", err)
	}
	defer rows.Close()
	parts := []*sluice.Part{}
	for rows.Next() {
		p, err := scanPart(rows)
		if err != nil {
			return nil, fmt.Errorf("list parts: %w", err)
		}
		p.JobID = jobID
		parts = append(parts, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list parts: %w", err)
	}
	return parts, nil
}

// scanPart reads a row of partColumns.
func scanPart(rows *sql.Rows) (*sluice.Part, error) {
	var (
		p                sluice.Part
		status           string
		created, updated int64
	)
	c, u := &p.Counts, &p.Usage
	if err := rows.Scan(&p.Number, &p.Round, &p.Endpoint, &p.Model, &p.Requests, &p.Bytes, &p.FileID, &p.BatchID,
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

// items calls fn for the requests that query (one of sqlItems) reads with args and, for
// its last two parameters, a line to start after and a page size, as Pending describes.
// Errors of the ledger are prefixed with op; fn's are returned as they are.
func (s *Store) items(ctx context.Context, op, query string, args []any, after int64, limit int,
	fn func(*sluice.Item) error) error {
	st, err := s.r.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer st.Close()
	given := 0
	for {
		n := resultsPage
		if limit > 0 {
			n = min(n, limit-given)
		}
		// A page is read whole and its query closed before fn sees it; see resultsPage.
		page, err := claimRows(ctx, st, make([]claimed, 0, n), slices.Concat(args, []any{after, n})...)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		for i := range page {
			if err := fn(&page[i].item); err != nil {
				return err
			}
		}
		given += len(page)
		if len(page) < n || (limit > 0 && given >= limit) {
			return nil
		}
		after = page[len(page)-1].item.Line
	}
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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	defer rollback(tx)
	c := s.completer(ctx, tx, seq, partOwner(number))
	var u sluice.Usage
	for i := range outcomes {
		o := &outcomes[i]
		applied, err := c.complete(o)
		if err != nil {
			return fmt.Errorf("complete part %d: line %d: %w", number, o.Line, err)
		}
		if applied && o.State == sluice.StateDone {
			u = u.Add(o.Usage)
		}
	}
	res, err := tx.ExecContext(ctx, sqlAddPartUsage, u.PromptTokens, u.CompletionTokens, u.CachedTokens, seq, number)
	if err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	if err := found(res); err != nil {
		return fmt.Errorf("complete part %d of job %s: %w", number, jobID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("complete part %d: %w", number, err)
	}
	return nil
}
