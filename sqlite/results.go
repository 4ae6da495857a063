package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sluice-llm/sluice"
)

// resultsPage is how many results one query of Results reads. Results reads a page, closes
// the query and then hands the page on, so fn may take its time, or call the Store,
// without holding a read transaction open (which would keep WAL checkpoints from
// completing).
const resultsPage = 512

// sqlResultsPage reads the final requests of a range of rows, in line order. A request
// without an answer (a line failed at ingest has one) reads as an empty one.
const sqlResultsPage = `SELECT r.line, r.custom_id, r.state, r.status_code, r.error_code,
		r.usage_prompt, r.usage_completion, r.usage_cached,
		IFNULL(o.request_id, ''), o.body, IFNULL(o.error_message, '')
	FROM request AS r LEFT JOIN request_output AS o ON o.id = r.id
	WHERE r.id > ? AND r.id <= ? AND r.state >= 2
	ORDER BY r.id LIMIT ?`

// Results calls fn for every final request with Line > after, in line order, until fn
// returns an error (which Results returns) or limit results were given (limit <= 0: no
// limit). It reads the ledger a page at a time, so a job of any size streams in bounded
// memory; requests that become final while it runs are given when their line is still
// ahead. The pages are read by one statement, prepared once: a query prepared for each
// page cost a sixth of the time of writing an output file.
func (s *Store) Results(ctx context.Context, jobID string, after int64, limit int, fn func(*sluice.Result) error) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	st, err := s.r.PrepareContext(ctx, sqlResultsPage)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	defer st.Close()
	given := 0
	for {
		n := resultsPage
		if limit > 0 {
			n = min(n, limit-given)
		}
		page, err := readResultsPage(ctx, st, make([]sluice.Result, 0, n), seq, after, n)
		if err != nil {
			return fmt.Errorf("read results: %w", err)
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		given += len(page)
		if len(page) < n || (limit > 0 && given >= limit) {
			return nil
		}
		after = page[len(page)-1].Line
	}
}

// readResultsPage appends to dst up to n final requests of the job with line > after, read
// by st, a statement of sqlResultsPage.
func readResultsPage(ctx context.Context, st *sql.Stmt, dst []sluice.Result, job, after int64, n int) ([]sluice.Result, error) {
	if after >= MaxLine {
		return dst, nil
	}
	_, last := jobRows(job)
	rows, err := st.QueryContext(ctx, rowID(job, max(after, 0)), last, n)
	if err != nil {
		return dst, err
	}
	defer rows.Close()
	// One row is scanned into res and body, then copied to dst: the scan's destinations
	// escape, so a row of its own would each be allocated.
	var (
		res   sluice.Result
		state int64
		body  []byte
	)
	u := &res.Usage
	dest := []any{&res.Line, &res.CustomID, &state, &res.StatusCode, &res.ErrorCode,
		&u.PromptTokens, &u.CompletionTokens, &u.CachedTokens, &res.RequestID, &body, &res.ErrorMessage}
	for rows.Next() {
		res, body = sluice.Result{}, nil
		if err := rows.Scan(dest...); err != nil {
			return dst, err
		}
		res.State = decodeState(state)
		if len(body) > 0 {
			res.Body = body
		}
		dst = append(dst, res)
	}
	return dst, rows.Err()
}
