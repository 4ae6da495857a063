package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

// The queries of Stats, each over the row range of one job.
const (
	sqlStatsTotals = `SELECT COUNT(*),
			COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 1), 0),
			COALESCE(SUM(state = 2), 0), COALESCE(SUM(state = 3), 0),
			COALESCE(SUM(attempts), 0), COALESCE(SUM(MAX(attempts - 1, 0)), 0), COALESCE(SUM(throttled), 0),
			COALESCE(SUM(usage_prompt), 0), COALESCE(SUM(usage_completion), 0), COALESCE(SUM(usage_cached), 0)
		FROM request WHERE id BETWEEN ? AND ?`
	sqlStatsByModel = `SELECT model, COUNT(*), SUM(usage_prompt), SUM(usage_completion), SUM(usage_cached)
		FROM request
		WHERE id BETWEEN ? AND ? AND (usage_prompt <> 0 OR usage_completion <> 0 OR usage_cached <> 0)
		GROUP BY model ORDER BY model`
	sqlStatsFailures = `SELECT
			CASE WHEN status_code <> 0 THEN CAST(status_code AS TEXT) ELSE error_code END AS code, COUNT(*)
		FROM request WHERE id BETWEEN ? AND ? AND state = 3 GROUP BY code`
	sqlStatsLatency = `SELECT latency FROM request WHERE id BETWEEN ? AND ? AND state = 2 ORDER BY latency`
)

// Stats summarises the job's ledger from one consistent snapshot. Latency percentiles
// are nearest-rank over the final attempts of done requests. Its cost grows with the job:
// a few aggregate scans of the job's small request rows, and a sort of the done
// latencies inside SQLite; no request is held in memory.
func (s *Store) Stats(ctx context.Context, jobID string) (*sluice.Stats, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	defer rollback(tx)
	st := &sluice.Stats{FailuresByCode: map[string]int64{}}
	for _, step := range []func(context.Context, *sql.Tx, int64, *sluice.Stats) error{
		statsTotals, statsByModel, statsFailures, statsLatency, statsRepaid,
	} {
		if err := step(ctx, tx, seq, st); err != nil {
			return nil, fmt.Errorf("job stats: %w", err)
		}
	}
	return st, nil
}

func statsTotals(ctx context.Context, tx *sql.Tx, job int64, st *sluice.Stats) error {
	first, last := jobRows(job)
	return tx.QueryRowContext(ctx, sqlStatsTotals, first, last).Scan(
		&st.Total, &st.Pending, &st.InFlight, &st.Done, &st.Failed,
		&st.Attempts, &st.Retries, &st.Throttled,
		&st.Usage.PromptTokens, &st.Usage.CompletionTokens, &st.Usage.CachedTokens)
}

// statsRepaid reads how many orphaned requests were claimed again (0007_repaid.sql).
func statsRepaid(ctx context.Context, tx *sql.Tx, job int64, st *sluice.Stats) error {
	return tx.QueryRowContext(ctx, `SELECT repaid FROM job WHERE seq = ?`, job).Scan(&st.Repaid)
}

func statsByModel(ctx context.Context, tx *sql.Tx, job int64, st *sluice.Stats) error {
	first, last := jobRows(job)
	rows, err := tx.QueryContext(ctx, sqlStatsByModel, first, last)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m sluice.ModelStats
		if err := rows.Scan(&m.Model, &m.Requests, &m.Usage.PromptTokens, &m.Usage.CompletionTokens,
			&m.Usage.CachedTokens); err != nil {
			return err
		}
		st.ByModel = append(st.ByModel, m)
	}
	return rows.Err()
}

// statsFailures counts failed requests by their status code, or by their error code when
// they got no HTTP answer.
func statsFailures(ctx context.Context, tx *sql.Tx, job int64, st *sluice.Stats) error {
	first, last := jobRows(job)
	rows, err := tx.QueryContext(ctx, sqlStatsFailures, first, last)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			code string
			n    int64
		)
		if err := rows.Scan(&code, &n); err != nil {
			return err
		}
		st.FailuresByCode[code] = n
	}
	return rows.Err()
}

// statsLatency computes the nearest-rank percentiles of done requests' latencies. SQLite
// sorts the job's done latencies and this reads them in order up to the highest rank it
// needs, keeping none. (An index on latency would spare the sort, but would cost every
// completion an insert at a random place in it.)
func statsLatency(ctx context.Context, tx *sql.Tx, job int64, st *sluice.Stats) error {
	n := st.Done
	if n == 0 {
		return nil
	}
	want := []struct {
		rank int64 // 1-based: ceil(pct/100 × n)
		dst  *time.Duration
	}{{(50*n + 99) / 100, &st.LatencyP50}, {(95*n + 99) / 100, &st.LatencyP95}, {(99*n + 99) / 100, &st.LatencyP99}}
	first, last := jobRows(job)
	rows, err := tx.QueryContext(ctx, sqlStatsLatency, first, last)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rank := int64(1); len(want) > 0 && rows.Next(); rank++ {
		for len(want) > 0 && want[0].rank == rank {
			var ns int64
			if err := rows.Scan(&ns); err != nil {
				return err
			}
			*want[0].dst = time.Duration(ns)
			want = want[1:]
		}
	}
	return rows.Err()
}
