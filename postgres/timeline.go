package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

var _ sluice.TimelineStore = (*Store)(nil)

// AppendTimeline merges buckets into the job's timeline and its running totals, in one
// transaction (0003_timeline.sql). The totals row is locked first, so that workers
// appending to one job's timeline at once take turns.
func (s *Store) AppendTimeline(ctx context.Context, jobID string, buckets []sluice.TimelineBucket) error {
	if len(buckets) == 0 {
		return nil
	}
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, `INSERT INTO timeline_total (job, data) VALUES ($1, '\x7b7d') ON CONFLICT DO NOTHING`, seq); err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	var total sluice.TimelineBucket
	if err := readBucket(tx.QueryRow(ctx, `SELECT data FROM timeline_total WHERE job = $1 FOR UPDATE`, seq), &total); err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	for i := range buckets {
		b := buckets[i]
		b.Start = b.Start.UTC()
		var old sluice.TimelineBucket
		if err := readBucket(tx.QueryRow(ctx, `SELECT data FROM timeline WHERE job = $1 AND start = $2`,
			seq, b.Start.UnixNano()), &old); err != nil {
			return fmt.Errorf("append timeline: %w", err)
		}
		old.Start = b.Start
		old.Merge(&b)
		data, err := json.Marshal(&old)
		if err != nil {
			return fmt.Errorf("append timeline: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO timeline (job, start, data) VALUES ($1, $2, $3)
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
	if _, err := tx.Exec(ctx, `UPDATE timeline_total SET data = $2 WHERE job = $1`, seq, data); err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	return nil
}

// readBucket decodes the bucket row reads into b; no row leaves b as it is.
func readBucket(row pgx.Row, b *sluice.TimelineBucket) error {
	var data []byte
	err := row.Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, _ := s.pool.Query(ctx, `SELECT data FROM timeline WHERE job = $1 AND start >= $2 ORDER BY start`, seq, from)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sluice.TimelineBucket, error) {
		var (
			data []byte
			b    sluice.TimelineBucket
		)
		if err := row.Scan(&data); err != nil {
			return b, err
		}
		return b, json.Unmarshal(data, &b)
	})
	if err != nil {
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
	err := s.pool.QueryRow(ctx, `SELECT j.ingested, t.data FROM job AS j
		LEFT JOIN timeline_total AS t ON t.job = j.seq WHERE j.id = $1`, jobID).Scan(&ingested, &data)
	if errors.Is(err, pgx.ErrNoRows) {
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
	status := int64(-1)
	if n, err := strconv.ParseInt(code, 10, 64); err == nil {
		status = n
	}
	rows, _ := s.pool.Query(ctx, `SELECT r.line, r.custom_id, r.status_code, r.error_code,
			o.request_id, o.body, o.error_message
		FROM request AS r LEFT JOIN request_output AS o ON o.job = r.job AND o.line = r.line
		WHERE r.job = $1 AND r.state = 3 AND r.line > $2
			AND ($3 = '' OR r.status_code = $4 OR r.error_code = $3)
		ORDER BY r.line LIMIT $5`, seq, max(after, 0), code, status, limit)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*sluice.Result, error) {
		res := &sluice.Result{State: sluice.StateFailed}
		var (
			requestID, errorMsg *string
			body                []byte
		)
		if err := row.Scan(&res.Line, &res.CustomID, &res.StatusCode, &res.ErrorCode,
			&requestID, &body, &errorMsg); err != nil {
			return nil, err
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
		return res, nil
	})
	if err != nil {
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
	req := &sluice.Request{}
	var body []byte
	err = s.pool.QueryRow(ctx, `SELECT r.custom_id, i.method, i.url, i.body
		FROM request AS r JOIN request_input AS i ON i.job = r.job AND i.line = r.line
		WHERE r.job = $1 AND r.line = $2`, seq, line).Scan(&req.CustomID, &req.Method, &req.URL, &body)
	if errors.Is(err, pgx.ErrNoRows) {
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
// holding a connection while fn runs.
func (s *Store) Finished(ctx context.Context, jobID string, fn func(*sluice.Finished) error) error {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return fmt.Errorf("read finished requests: %w", err)
	}
	var after int64
	for {
		rows, _ := s.pool.Query(ctx, `SELECT line, finished_at, state, attempts, throttled, status_code,
				error_code, latency, model, usage_prompt, usage_completion, usage_cached
			FROM request WHERE job = $1 AND line > $2 AND state >= 2 AND finished_at IS NOT NULL
			ORDER BY line LIMIT $3`, seq, after, resultsPage)
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sluice.Finished, error) {
			var (
				f        sluice.Finished
				at, lat  int64
				st       int16
				att, thr int64
				status   int64
			)
			err := row.Scan(&f.Line, &at, &st, &att, &thr, &status, &f.ErrorCode, &lat,
				&f.Model, &f.Usage.PromptTokens, &f.Usage.CompletionTokens, &f.Usage.CachedTokens)
			f.At, f.Latency = time.Unix(0, at).UTC(), time.Duration(lat)
			f.Attempts, f.Throttled, f.StatusCode = int(att), int(thr), int(status)
			f.State = sluice.StateDone
			if st == 3 {
				f.State = sluice.StateFailed
			}
			return f, err
		})
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
		after = page[len(page)-1].Line
	}
}
