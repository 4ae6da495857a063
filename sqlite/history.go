package sqlite

import (
	"context"
	"fmt"

	"github.com/sluice-llm/sluice"
)

// sqlModelHistory sums the usage of done requests that carried usage, by model, over
// every job. It reads the small request rows only; with no index on state it is one scan
// of the request table.
const sqlModelHistory = `SELECT model, COUNT(*), SUM(usage_prompt), SUM(usage_completion), SUM(usage_cached)
	FROM request
	WHERE state = 2 AND model <> '' AND (usage_prompt <> 0 OR usage_completion <> 0 OR usage_cached <> 0)
	GROUP BY model`

// ModelHistory sums, by model, the usage of every done request in the ledger, over all
// jobs: what earlier runs of a model actually used, from which an estimate can expect
// the output of requests not yet sent (Usage.CompletionTokens / Requests is the mean
// completion per request). The map is keyed by the model as the requests named it.
// Requests whose answer carried no usage are left out, so that they do not pull the mean
// down. Its cost grows with the ledger: one scan of the small request rows.
func (s *Store) ModelHistory(ctx context.Context) (map[string]sluice.ModelStats, error) {
	rows, err := s.r.QueryContext(ctx, sqlModelHistory)
	if err != nil {
		return nil, fmt.Errorf("model history: %w", err)
	}
	defer rows.Close()
	out := map[string]sluice.ModelStats{}
	for rows.Next() {
		var m sluice.ModelStats
		if err := rows.Scan(&m.Model, &m.Requests, &m.Usage.PromptTokens, &m.Usage.CompletionTokens,
			&m.Usage.CachedTokens); err != nil {
			return nil, fmt.Errorf("model history: %w", err)
		}
		out[m.Model] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("model history: %w", err)
	}
	return out, nil
}
