package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

// The queries of Stats, each over the rows of job $1.
const (
	sqlStatsTotals = `SELECT COUNT(*),
			COUNT(*) FILTER (WHERE state = 0), COUNT(*) FILTER (WHERE state = 1),
			COUNT(*) FILTER (WHERE state = 2), COUNT(*) FILTER (WHERE state = 3),
			COALESCE(SUM(attempts), 0)::bigint, COALESCE(SUM(GREATEST(attempts - 1, 0)), 0)::bigint,
			COALESCE(SUM(throttled), 0)::bigint,
			COALESCE(SUM(usage_prompt), 0)::bigint, COALESCE(SUM(usage_completion), 0)::bigint,
			COALESCE(SUM(usage_cached), 0)::bigint
		FROM request WHERE job = $1`
	sqlStatsByModel = `SELECT model, COUNT(*), SUM(usage_prompt)::bigint, SUM(usage_completion)::bigint,
			SUM(usage_cached)::bigint
		FROM request
		WHERE job = $1 AND (usage_prompt <> 0 OR usage_completion <> 0 OR usage_cached <> 0)
		GROUP BY model ORDER BY model`
	sqlStatsFailures = `SELECT CASE WHEN status_code <> 0 THEN status_code::text ELSE error_code END AS code, COUNT(*)
		FROM request WHERE job = $1 AND state = 3 GROUP BY code`
	// sqlStatsLatency reads the latencies of the given ranks ($2, 1-based) among the
	// job's done requests in latency order.
	sqlStatsLatency = `SELECT rank, latency FROM (
			SELECT latency, row_number() OVER (ORDER BY latency) AS rank FROM request WHERE job = $1 AND state = 2
		) AS ranked WHERE rank = ANY($2)`
)

// Stats summarises the job's ledger from one consistent snapshot (a repeatable-read,
// read-only transaction). Latency percentiles are nearest-rank over the final attempts of
// done requests. Its cost grows with the job: a few aggregate scans of the job's small
// request rows and one sort of its done latencies, all inside PostgreSQL.
func (s *Store) Stats(ctx context.Context, jobID string) (*sluice.Stats, error) {
	seq, err := s.jobSeq(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("job stats: %w", err)
	}
	defer rollback(ctx, tx)
	st := &sluice.Stats{FailuresByCode: map[string]int64{}}
	for _, step := range []func(context.Context, pgx.Tx, int64, *sluice.Stats) error{
		statsTotals, statsByModel, statsFailures, statsLatency, statsRepaid,
	} {
		if err := step(ctx, tx, seq, st); err != nil {
			return nil, fmt.Errorf("job stats: %w", err)
		}
	}
	return st, nil
}

func statsTotals(ctx context.Context, tx pgx.Tx, job int64, st *sluice.Stats) error {
	return tx.QueryRow(ctx, sqlStatsTotals, job).Scan(
		&st.Total, &st.Pending, &st.InFlight, &st.Done, &st.Failed,
		&st.Attempts, &st.Retries, &st.Throttled,
		&st.Usage.PromptTokens, &st.Usage.CompletionTokens, &st.Usage.CachedTokens)
}

// statsRepaid reads how many orphaned requests were claimed again (0002_repaid.sql).
func statsRepaid(ctx context.Context, tx pgx.Tx, job int64, st *sluice.Stats) error {
	return tx.QueryRow(ctx, `SELECT repaid FROM job WHERE seq = $1`, job).Scan(&st.Repaid)
}

func statsByModel(ctx context.Context, tx pgx.Tx, job int64, st *sluice.Stats) error {
	rows, _ := tx.Query(ctx, sqlStatsByModel, job)
	var m sluice.ModelStats
	_, err := pgx.ForEachRow(rows, []any{&m.Model, &m.Requests, &m.Usage.PromptTokens, &m.Usage.CompletionTokens,
		&m.Usage.CachedTokens}, func() error {
		st.ByModel = append(st.ByModel, m)
		return nil
	})
	return err
}

// statsFailures counts failed requests by their status code, or by their error code when
// they got no HTTP answer.
func statsFailures(ctx context.Context, tx pgx.Tx, job int64, st *sluice.Stats) error {
	rows, _ := tx.Query(ctx, sqlStatsFailures, job)
	var (
		code string
		n    int64
	)
	_, err := pgx.ForEachRow(rows, []any{&code, &n}, func() error {
		st.FailuresByCode[code] = n
		return nil
	})
	return err
}

// statsLatency reads the nearest-rank percentiles of done requests' latencies: the
// ceil(p×n/100)-th smallest of n.
func statsLatency(ctx context.Context, tx pgx.Tx, job int64, st *sluice.Stats) error {
	n := st.Done
	if n == 0 {
		return nil
	}
	want := map[int64][]*time.Duration{}
	for _, p := range []struct {
		pct int64
		dst *time.Duration
	}{{50, &st.LatencyP50}, {95, &st.LatencyP95}, {99, &st.LatencyP99}} {
		rank := (p.pct*n + 99) / 100
		want[rank] = append(want[rank], p.dst)
	}
	ranks := make([]int64, 0, len(want))
	for r := range want {
		ranks = append(ranks, r)
	}
	rows, _ := tx.Query(ctx, sqlStatsLatency, job, ranks)
	var rank, ns int64
	_, err := pgx.ForEachRow(rows, []any{&rank, &ns}, func() error {
		for _, dst := range want[rank] {
			*dst = time.Duration(ns)
		}
		return nil
	})
	return err
}
