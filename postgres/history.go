package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

// sqlModelHistory sums the usage of done requests that carried usage, by model, over
// every job.
const sqlModelHistory = `SELECT model, COUNT(*), SUM(usage_prompt)::bigint, SUM(usage_completion)::bigint,
		SUM(usage_cached)::bigint
	FROM request
	WHERE state = 2 AND model <> '' AND (usage_prompt <> 0 OR usage_completion <> 0 OR usage_cached <> 0)
	GROUP BY model`

// ModelHistory sums, by model, the usage of every done request in the ledger, over all
// jobs, as the SQLite store's ModelHistory does. Its cost grows with the ledger: one
// scan of the small request rows.
func (s *Store) ModelHistory(ctx context.Context) (map[string]sluice.ModelStats, error) {
	rows, _ := s.pool.Query(ctx, sqlModelHistory)
	out := map[string]sluice.ModelStats{}
	var m sluice.ModelStats
	if _, err := pgx.ForEachRow(rows, []any{&m.Model, &m.Requests, &m.Usage.PromptTokens, &m.Usage.CompletionTokens,
		&m.Usage.CachedTokens}, func() error {
		out[m.Model] = m
		return nil
	}); err != nil {
		return nil, fmt.Errorf("model history: %w", err)
	}
	return out, nil
}
