package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
)

// Migrations lists the schema versions the store has had applied (Open applies the
// missing ones), in version order.
func (s *Store) Migrations(ctx context.Context) ([]sluice.Migration, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_version ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	defer rows.Close()
	var ms []sluice.Migration
	for rows.Next() {
		var (
			m  sluice.Migration
			at int64
		)
		if err := rows.Scan(&m.Version, &m.Name, &at); err != nil {
			return nil, fmt.Errorf("list migrations: %w", err)
		}
		m.AppliedAt = time.Unix(0, at)
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	return ms, nil
}
