package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/sluice-llm/sluice/internal/migration"
)

// migrations holds the schema, one numbered file per version: NNNN_name.sql.
//
//go:embed migration/*.sql
var migrations embed.FS

// loadMigrations reads the migrations in fsys (migration.Load).
func loadMigrations(fsys fs.FS) ([]migration.Migration, error) { return migration.Load(fsys) }

// appliedVersions reads the versions recorded in schema_version.
func appliedVersions(ctx context.Context, tx *sql.Tx) (map[int]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// migrate applies the migrations in fsys that db has not had yet, in order, in one
// transaction, and records each in schema_version. Two processes opening the same new
// file at once are serialised by the write lock taken at BEGIN.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err == nil && len(ms) == 0 {
		err = errors.New("no migrations")
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer rollback(tx)
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for v := range applied {
		if !slices.ContainsFunc(ms, func(m migration.Migration) bool { return m.Version == v }) {
			return fmt.Errorf("migrate: the ledger has schema version %d, newer than this sluice knows: upgrade sluice", v)
		}
	}
	// Every migration not yet applied runs, also one numbered below the highest applied:
	// migrations written side by side may land in either order.
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate to %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("migrate to %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
