package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

// SaveUsage records what batch id of sluice serve has used so far, replacing what was
// recorded for it before. owner is the hash of the batch's client key, keyName the key's
// configured name, user the batch's metadata "user"; the batch counts in the budget period
// its creation falls in. Usage is always the batch's whole usage so far, read from its
// ledger, so saving it again after a crash counts nothing twice. A row of the online
// gateway counts requests (0 for a batch), cacheHits of them answered from its cache.
func (s *Store) SaveUsage(ctx context.Context, id, owner, keyName, user string, created time.Time, u sluice.Usage, cost float64,
	requests, cacheHits int64) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO serve_usage
		(batch_id, owner, key_name, user_id, created_at, prompt_tokens, completion_tokens, cost, requests, cache_hits, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (batch_id) DO UPDATE SET key_name = excluded.key_name, user_id = excluded.user_id,
			prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
			cost = excluded.cost, requests = excluded.requests, cache_hits = excluded.cache_hits,
			updated_at = excluded.updated_at`,
		id, owner, keyName, user, created.Unix(), u.PromptTokens, u.CompletionTokens, cost, requests, cacheHits, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("save usage of %s: %w", id, err)
	}
	return nil
}

// SumUsage sums the usage recorded in [from, to), of batches and of the online gateway,
// and calls fn with each sum: of owner's rows when owner is not "", else of each owner's;
// with byUser, of each (owner, user) pair. With each sum come the batches it counts, the
// online requests, and those of them answered from the cache. Sums come most costly
// first, then most tokens first. keyName is the name the owner's key was last recorded with.
func (s *Store) SumUsage(ctx context.Context, owner string, byUser bool, from, to time.Time,
	fn func(owner, keyName, user string, u sluice.Usage, cost float64, batches, requests, cacheHits int64) error) error {
	group, user := "owner", "''"
	if byUser {
		group, user = "owner, user_id", "user_id"
	}
	q := `SELECT owner, MAX(key_name), ` + user + `, SUM(prompt_tokens), SUM(completion_tokens), SUM(cost),
			SUM(requests = 0), SUM(requests), SUM(cache_hits)
		FROM serve_usage WHERE (? = '' OR owner = ?) AND created_at >= ? AND created_at < ?
		GROUP BY ` + group + `
		ORDER BY SUM(cost) DESC, SUM(prompt_tokens) + SUM(completion_tokens) DESC, owner, 3`
	rows, err := s.r.QueryContext(ctx, q, owner, owner, from.Unix(), to.Unix())
	if err != nil {
		return fmt.Errorf("sum usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			o, name, usr string
			u            sluice.Usage
			cost         float64
			n, req, hits int64
		)
		if err := rows.Scan(&o, &name, &usr, &u.PromptTokens, &u.CompletionTokens, &cost, &n, &req, &hits); err != nil {
			return fmt.Errorf("sum usage: %w", err)
		}
		if err := fn(o, name, usr, u, cost, n, req, hits); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sum usage: %w", err)
	}
	return nil
}
