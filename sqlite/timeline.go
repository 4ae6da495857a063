package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

var _ sluice.TimelineStore = (*Store)(nil)

// AppendTimeline merges buckets into the job's timeline and its running totals, in one
// transaction (0009_timeline.sql).
func (s *Store) AppendTimeline(ctx context.Context, jobID string, buckets []sluice.TimelineBucket) error {
	if len(buckets) == 0 {
		return nil
	}
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	defer rollback(tx)
	var total sluice.TimelineBucket
	if err := readBucket(tx.QueryRowContext(ctx, `SELECT data FROM timeline_total WHERE job = ?`, seq), &total); err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	for i := range buckets {
		b := buckets[i]
		b.Start = b.Start.UTC()
		var old sluice.TimelineBucket
		if err := readBucket(tx.QueryRowContext(ctx, `SELECT data FROM timeline WHERE job = ? AND start = ?`,
			seq, b.Start.UnixNano()), &old); err != nil {
			return fmt.Errorf("append timeline: %w", err)
		}
		old.Start = b.Start
		old.Merge(&b)
		data, err := json.Marshal(&old)
		if err != nil {
			return fmt.Errorf("append timeline: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO timeline (job, start, data) VALUES (?, ?, ?)
			ON CONFLICT (job, start) DO UPDATE SET data = excluded.data`, seq, b.Start.UnixNano(), data); err != nil {
			return fmt.Errorf("append timeline: %w", err)
		}
		total.Merge(&b)
	}
	total.Start, total.Width = time.Time{}, 0
	data, err := json.Marshal(&total)
	if err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO timeline_total (job, data) VALUES (?, ?)
		ON CONFLICT (job) DO UPDATE SET data = excluded.data`, seq, data); err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	return nil
}

// readBucket decodes the bucket row reads into b; no row leaves b as it is.
func readBucket(row *sql.Row, b *sluice.TimelineBucket) error {
	var data []byte
	err := row.Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(data, b)
}

// Timeline returns the job's buckets with Start >= since, in time order.
func (s *Store) Timeline(ctx context.Context, jobID string, since time.Time) ([]sluice.TimelineBucket, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	from := int64(-1 << 63)
	if !since.IsZero() {
		from = since.UnixNano()
	}
	rows, err := s.r.QueryContext(ctx, `SELECT data FROM timeline WHERE job = ? AND start >= ? ORDER BY start`, seq, from)
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	defer rows.Close()
	var out []sluice.TimelineBucket
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("read timeline: %w", err)
		}
		var b sluice.TimelineBucket
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("read timeline: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	return out, nil
}

// JobCounts reads the job's row and its timeline's totals: two rows, whatever the job's
// size.
func (s *Store) JobCounts(ctx context.Context, jobID string) (*sluice.JobCounts, error) {
	var (
		ingested int64
		data     []byte
	)
	err := s.r.QueryRowContext(ctx, `SELECT j.ingested, t.data FROM job AS j
		LEFT JOIN timeline_total AS t ON t.job = j.seq WHERE j.id = ?`, jobID).Scan(&ingested, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job counts: job %s: %w", jobID, sluice.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("job counts: %w", err)
	}
	c := &sluice.JobCounts{JobID: jobID, Total: ingested, HasTimeline: data != nil}
	if data != nil {
		if err := json.Unmarshal(data, &c.Totals); err != nil {
			return nil, fmt.Errorf("job counts: %w", err)
		}
	}
	return c, nil
}

// Failures reads failed requests through the request_failed index: their cost grows with
// the failures read, not with the job.
func (s *Store) Failures(ctx context.Context, jobID string, after int64, code string, limit int) ([]*sluice.Result, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("read failures: %w", err)
	}
	if limit <= 0 {
		limit = resultsPage
	}
	rows, err := s.r.QueryContext(ctx, `SELECT r.line, r.custom_id, r.status_code, r.error_code,
			o.request_id, o.body, o.error_message
		FROM request AS r LEFT JOIN request_output AS o ON o.id = r.id
		WHERE r.job = ? AND r.state = 3 AND r.line > ?
			AND (? = '' OR CAST(r.status_code AS TEXT) = ? OR r.error_code = ?)
		ORDER BY r.line LIMIT ?`, seq, max(after, 0), code, code, code, limit)
	if err != nil {
		return nil, fmt.Errorf("read failures: %w", err)
	}
	defer rows.Close()
	var out []*sluice.Result
	for rows.Next() {
		res := &sluice.Result{State: sluice.StateFailed}
		var (
			requestID, errorMsg *string
			body                []byte
		)
		if err := rows.Scan(&res.Line, &res.CustomID, &res.StatusCode, &res.ErrorCode,
			&requestID, &body, &errorMsg); err != nil {
			return nil, fmt.Errorf("read failures: %w", err)
		}
		if requestID != nil {
			res.RequestID = *requestID
		}
		if errorMsg != nil {
			res.ErrorMessage = *errorMsg
		}
		if len(body) > 0 {
			res.Body = body
		}
		out = append(out, res)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read failures: %w", err)
	}
	return out, nil
}

// Input returns the request of the job's line.
func (s *Store) Input(ctx context.Context, jobID string, line int64) (*sluice.Request, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if line < 1 || line > MaxLine {
		return nil, fmt.Errorf("read input: line %d: %w", line, sluice.ErrNotFound)
	}
	req := &sluice.Request{}
	var body []byte
	err = s.r.QueryRowContext(ctx, `SELECT r.custom_id, i.method, i.url, i.body
		FROM request AS r JOIN request_input AS i ON i.id = r.id WHERE r.id = ?`, rowID(seq, line)).
		Scan(&req.CustomID, &req.Method, &req.URL, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read input: line %d: %w", line, sluice.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if len(body) > 0 {
		req.Body = body
	}
	return req, nil
}

// Finished reads the job's final requests with a finish time, a page at a time, without
// holding a read transaction while fn runs.
func (s *Store) Finished(ctx context.Context, jobID string, fn func(*sluice.Finished) error) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("read finished requests: %w", err)
	}
	_, last := jobRows(seq)
	after := rowID(seq, 0)
	for {
		page, err := s.finishedPage(ctx, after, last)
		if err != nil {
			return fmt.Errorf("read finished requests: %w", err)
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		if len(page) < resultsPage {
			return nil
		}
		after = rowID(seq, page[len(page)-1].Line)
	}
}

func (s *Store) finishedPage(ctx context.Context, after, last int64) ([]sluice.Finished, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT line, finished_at, state, attempts, throttled, status_code,
			error_code, latency, model, usage_prompt, usage_completion, usage_cached
		FROM request WHERE id > ? AND id <= ? AND state >= 2 AND finished_at IS NOT NULL
		ORDER BY id LIMIT ?`, after, last, resultsPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]sluice.Finished, 0, resultsPage)
	for rows.Next() {
		var (
			f           sluice.Finished
			at, lat, st int64
		)
		if err := rows.Scan(&f.Line, &at, &st, &f.Attempts, &f.Throttled, &f.StatusCode, &f.ErrorCode, &lat,
			&f.Model, &f.Usage.PromptTokens, &f.Usage.CompletionTokens, &f.Usage.CachedTokens); err != nil {
			return nil, err
		}
		f.At, f.State, f.Latency = time.Unix(0, at).UTC(), decodeState(st), time.Duration(lat)
		page = append(page, f)
	}
	return page, rows.Err()
}
