package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// GetCached returns the cached answer bodies of the keys the cache holds (the pipeline
// cache: answers by the content address of their request). Keys it lacks are absent from
// the map.
func (s *Store) GetCached(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT key, body FROM cache WHERE key = ANY($1)`, keys)
	var (
		k    string
		body []byte
	)
	if _, err := pgx.ForEachRow(rows, []any{&k, &body}, func() error {
		out[k] = body
		body = nil // the next row scans into a new slice
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read cache: %w", err)
	}
	return out, nil
}

// PutCached stores answer bodies in the cache by key, in one statement, replacing any
// held under the same keys.
func (s *Store) PutCached(ctx context.Context, entries map[string][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	keys, bodies := make([]string, 0, len(entries)), make([][]byte, 0, len(entries))
	for k, b := range entries {
		if b == nil {
			b = []byte{} // the column is NOT NULL: an empty body is still an answer
		}
		keys, bodies = append(keys, k), append(bodies, b)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO cache (key, body, created_at)
		SELECT k, b, $3 FROM unnest($1::text[], $2::bytea[]) AS e(k, b)
		ON CONFLICT (key) DO UPDATE SET body = excluded.body, created_at = excluded.created_at`,
		keys, bodies, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	return nil
}
