package sqlite

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sluice-llm/sluice"
)

func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, "_txlock", "immediate"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT version FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrationsApplyInOrderOnce(t *testing.T) {
	initSQL, err := migrations.ReadFile("migration/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	db := openRaw(t, filepath.Join(t.TempDir(), "ledger.db"))
	v1 := fstest.MapFS{"migration/0001_init.sql": {Data: initSQL}}
	if err := migrate(t.Context(), db, v1); err != nil {
		t.Fatal(err)
	}
	if err := migrate(t.Context(), db, v1); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	// A later version adds two migrations, the second using what the first made.
	v3 := fstest.MapFS{
		"migration/0001_init.sql":   {Data: initSQL},
		"migration/0003_index.sql":  {Data: []byte(`CREATE INDEX request_note ON request (note);`)},
		"migration/0002_column.sql": {Data: []byte(`ALTER TABLE request ADD COLUMN note TEXT;`)},
	}
	if err := migrate(t.Context(), db, v3); err != nil {
		t.Fatal(err)
	}
	if err := migrate(t.Context(), db, v3); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	if got := versions(t, db); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("versions %v, want [1 2 3]", got)
	}
	// The older sluice refuses a ledger it does not understand.
	err = migrate(t.Context(), db, v1)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("older migrations on a newer ledger: %v, want an error saying it is newer", err)
	}
}

func TestFailedMigrationChangesNothing(t *testing.T) {
	initSQL, err := migrations.ReadFile("migration/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	db := openRaw(t, filepath.Join(t.TempDir(), "ledger.db"))
	bad := fstest.MapFS{
		"migration/0001_init.sql": {Data: initSQL},
		"migration/0002_bad.sql":  {Data: []byte(`ALTER TABLE request ADD COLUMN note TEXT; SELECT * FROM missing;`)},
	}
	if err := migrate(t.Context(), db, bad); err == nil {
		t.Fatal("a failing migration succeeded")
	}
	var tables int
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'request'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Error("the migrations before the failing one were kept: they must all roll back")
	}
}

func TestBadMigrationNames(t *testing.T) {
	for _, name := range []string{"migration/init.sql", "migration/0_init.sql", "migration/x1_init.sql"} {
		if _, err := loadMigrations(fstest.MapFS{name: {Data: []byte(`SELECT 1;`)}}); err == nil {
			t.Errorf("migration named %s accepted", name)
		}
	}
	twice := fstest.MapFS{"migration/0001_a.sql": {Data: []byte(`SELECT 1;`)}, "migration/01_b.sql": {Data: []byte(`SELECT 1;`)}}
	if _, err := loadMigrations(twice); err == nil {
		t.Error("two migrations of one version accepted")
	}
}

// TestMigrationLandedOutOfOrder: a migration numbered below one already applied (two
// written side by side, landing in either order) still runs.
func TestMigrationLandedOutOfOrder(t *testing.T) {
	db := openRaw(t, filepath.Join(t.TempDir(), "m.db"))
	withOut := fstest.MapFS{
		"migration/0001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER);`)},
		"migration/0003_c.sql": {Data: []byte(`CREATE TABLE c (x INTEGER);`)},
	}
	if err := migrate(t.Context(), db, withOut); err != nil {
		t.Fatal(err)
	}
	withOut["migration/0002_b.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE b (x INTEGER);`)}
	if err := migrate(t.Context(), db, withOut); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, db); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("versions %v, want [1 2 3]", got)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO b (x) VALUES (1)`); err != nil {
		t.Errorf("table of the late migration: %v", err)
	}
}

// A job cancelled by a version before the JobCancelled state (interrupted, its error
// "cancelled by sluice batch cancel") is cancelled after the upgrade; other interrupted
// jobs stay interrupted.
func TestMigrationMovesCancelledJobs(t *testing.T) {
	before := fstest.MapFS{}
	ents, err := migrations.ReadDir("migration")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() >= "0011" {
			continue
		}
		data, err := migrations.ReadFile("migration/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		before["migration/"+e.Name()] = &fstest.MapFile{Data: data}
	}
	db := openRaw(t, filepath.Join(t.TempDir(), "ledger.db"))
	if err := migrate(t.Context(), db, before); err != nil {
		t.Fatal(err)
	}
	for id, e := range map[string]string{"job-c": "cancelled by sluice batch cancel", "job-i": "interrupted"} {
		if _, err := db.ExecContext(t.Context(), `INSERT INTO job (id, state, created_at, updated_at, input, fingerprint, options,
			ingested, ingest_done, elapsed, error) VALUES (?, 'interrupted', 0, 0, '', '', NULL, 0, 0, 0, ?)`, id, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrate(t.Context(), db, migrations); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]sluice.JobState{"job-c": sluice.JobCancelled, "job-i": sluice.JobInterrupted} {
		var got string
		if err := db.QueryRowContext(t.Context(), `SELECT state FROM job WHERE id = ?`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s after the upgrade: %s, want %s", id, got, want)
		}
	}
}
