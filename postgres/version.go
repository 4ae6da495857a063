package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
)

// Migrations lists the schema versions the store has had applied (Open applies the
// missing ones), in version order.
func (s *Store) Migrations(ctx context.Context) ([]sluice.Migration, error) {
	rows, _ := s.pool.Query(ctx, `SELECT version, name, applied_at FROM schema_version ORDER BY version`)
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sluice.Migration, error) {
		var (
			m  sluice.Migration
			at int64
		)
		err := row.Scan(&m.Version, &m.Name, &at)
		m.AppliedAt = time.Unix(0, at)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	return ms, nil
}
