package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// maxCacheKeys is how many keys one cache query binds; callers' larger sets are split.
const maxCacheKeys = 500

// GetCached returns the cached answer bodies of the keys the cache holds (the pipeline
// cache: answers by the content address of their request). Keys it lacks are absent from
// the map.
func (s *Store) GetCached(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), maxCacheKeys)
		if err := s.getCached(ctx, keys[:n], out); err != nil {
			return nil, fmt.Errorf("read cache: %w", err)
		}
		keys = keys[n:]
	}
	return out, nil
}

func (s *Store) getCached(ctx context.Context, keys []string, out map[string][]byte) error {
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	q := `SELECT key, body FROM cache WHERE key IN (?` + strings.Repeat(",?", len(keys)-1) + `)`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var body []byte
		if err := rows.Scan(&k, &body); err != nil {
			return err
		}
		out[k] = body
	}
	return rows.Err()
}

// PutCached stores answer bodies in the cache by key, in one transaction, replacing any
// held under the same keys.
func (s *Store) PutCached(ctx context.Context, entries map[string][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	defer rollback(tx)
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO cache (key, body, created_at) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	defer stmt.Close()
	now := time.Now().UnixNano()
	for k, body := range entries {
		if _, err := stmt.ExecContext(ctx, k, body, now); err != nil {
			return fmt.Errorf("write cache: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	return nil
}
