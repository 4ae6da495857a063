// Package pgtest gives tests a PostgreSQL schema of their own, in the database that
// SLUICE_TEST_POSTGRES_URL names; tests that need one are skipped without it.
package pgtest

import (
	"context"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice/internal/ids"
)

// URLEnv names the database the tests use; without it they are skipped.
const URLEnv = "SLUICE_TEST_POSTGRES_URL"

// URL returns the test database's URL, or skips the test.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(URLEnv)
	if u == "" {
		tb.Skipf("%s is not set", URLEnv)
	}
	return u
}

// SchemaURL returns the URL of a new schema of the test's own (named by the store's
// "schema" parameter), dropped when the test ends, and the schema's name.
func SchemaURL(tb testing.TB) (string, string) {
	tb.Helper()
	base := URL(tb)
	schema := "sluice_test_" + ids.Hex(6)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s: %v", URLEnv, err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	tb.Cleanup(func() { dropSchema(tb, base, schema) })
	return u.String(), schema
}

// dropSchema drops schema and everything in it.
func dropSchema(tb testing.TB, base, schema string) {
	ctx := context.WithoutCancel(tb.Context())
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		tb.Errorf("drop schema %s: %v", schema, err)
	}
}
