package postgres

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
	_, err := s.pool.Exec(ctx, `INSERT INTO serve_usage
		(batch_id, owner, key_name, user_id, created_at, prompt_tokens, completion_tokens, cost, requests, cache_hits, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
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
// first, then most tokens first. keyName is the greatest name the owner's key was
// recorded with in the period, as in the SQLite store.
func (s *Store) SumUsage(ctx context.Context, owner string, byUser bool, from, to time.Time,
	fn func(owner, keyName, user string, u sluice.Usage, cost float64, batches, requests, cacheHits int64) error) error {
	group, user := "owner", "''"
	if byUser {
		group, user = "owner, user_id", "user_id"
	}
	rows, err := s.pool.Query(ctx, `SELECT owner, MAX(key_name), `+user+`,
			SUM(prompt_tokens)::bigint, SUM(completion_tokens)::bigint, SUM(cost),
			COUNT(*) FILTER (WHERE requests = 0), SUM(requests)::bigint, SUM(cache_hits)::bigint
		FROM serve_usage WHERE ($1 = '' OR owner = $1) AND created_at >= $2 AND created_at < $3
		GROUP BY `+group+`
		ORDER BY SUM(cost) DESC, SUM(prompt_tokens) + SUM(completion_tokens) DESC, owner, 3`,
		owner, from.Unix(), to.Unix())
	if err != nil {
		return fmt.Errorf("sum usage: %w", err)
	}
	type sum struct {
		owner, name, user string
		u                 sluice.Usage
		cost              float64
		n, req, hits      int64
	}
	var sums []sum
	for rows.Next() {
		var r sum
		if err := rows.Scan(&r.owner, &r.name, &r.user, &r.u.PromptTokens, &r.u.CompletionTokens, &r.cost, &r.n, &r.req, &r.hits); err != nil {
			rows.Close()
			return fmt.Errorf("sum usage: %w", err)
		}
		sums = append(sums, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sum usage: %w", err)
	}
	for _, r := range sums { // fn may use the store: the rows are closed first
		if err := fn(r.owner, r.name, r.user, r.u, r.cost, r.n, r.req, r.hits); err != nil {
			return err
		}
	}
	return nil
}
