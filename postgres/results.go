package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

// resultsPage is how many rows one query of Results, Pending and PartItems reads. Each
// reads a page, closes the query and then hands the page on, so fn may take its time, or
// call the Store, without holding a connection.
const resultsPage = 512

// sqlResultsPage reads the final requests of job $1 with line > $2, in line order.
const sqlResultsPage = `SELECT r.line, r.custom_id, r.state, r.status_code, r.error_code,
		r.usage_prompt, r.usage_completion, r.usage_cached,
		o.request_id, o.body, o.error_message
	FROM request AS r LEFT JOIN request_output AS o ON o.job = r.job AND o.line = r.line
	WHERE r.job = $1 AND r.line > $2 AND r.state >= 2
	ORDER BY r.line LIMIT $3`

// Results calls fn for every final request with Line > after, in line order, until fn
// returns an error (which Results returns) or limit results were given (limit <= 0: no
// limit). It reads the ledger a page at a time, so a job of any size streams in bounded
// memory.
func (s *Store) Results(ctx context.Context, jobID string, after int64, limit int, fn func(*sluice.Result) error) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	given := 0
	for {
		n := resultsPage
		if limit > 0 {
			n = min(n, limit-given)
		}
		rows, _ := s.pool.Query(ctx, sqlResultsPage, seq, max(after, 0), n)
		page, err := pgx.CollectRows(rows, scanResult)
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

// scanResult reads a row of sqlResultsPage.
func scanResult(row pgx.CollectableRow) (sluice.Result, error) {
	var (
		res                 sluice.Result
		state               int16
		requestID, errorMsg *string
		body                []byte
	)
	if err := row.Scan(&res.Line, &res.CustomID, &state, &res.StatusCode, &res.ErrorCode,
		&res.Usage.PromptTokens, &res.Usage.CompletionTokens, &res.Usage.CachedTokens,
		&requestID, &body, &errorMsg); err != nil {
		return res, err
	}
	res.State = decodeState(state)
	if requestID != nil {
		res.RequestID = *requestID
	}
	if errorMsg != nil {
		res.ErrorMessage = *errorMsg
	}
	if len(body) > 0 {
		res.Body = body
	}
	return res, nil
}

// items calls fn for the requests that query (of itemColumns) reads with args and, for
// its last two parameters, a line to start after and a page size, a page at a time, as
// Results does. Errors of the ledger are prefixed with op; fn's are returned as they are.
func (s *Store) items(ctx context.Context, op, query string, args []any, after int64, limit int,
	fn func(*sluice.Item) error) error {
	given := 0
	for {
		n := resultsPage
		if limit > 0 {
			n = min(n, limit-given)
		}
		rows, _ := s.pool.Query(ctx, query, slices.Concat(args, []any{after, n})...)
		page, err := collectItems(rows, n)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
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
