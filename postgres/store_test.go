package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/postgres"
	"github.com/sluice-llm/sluice/storetest"
)

// The store serves sluice batch, pipelines and the conformance suite's optional parts.
var (
	_ batch.Store            = (*postgres.Store)(nil)
	_ pipeline.Cache         = (*postgres.Store)(nil)
	_ storetest.PartStore    = (*postgres.Store)(nil)
	_ storetest.RateStore    = (*postgres.Store)(nil)
	_ storetest.CacheStore   = (*postgres.Store)(nil)
	_ storetest.HistoryStore = (*postgres.Store)(nil)
	_ storetest.DeleteStore  = (*postgres.Store)(nil)
)

// urlEnv names the database the tests use; without it they are skipped.
const urlEnv = "SLUICE_TEST_POSTGRES_URL"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testURL returns the test database's URL, or skips the test.
func testURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(urlEnv)
	if u == "" {
		tb.Skipf("%s is not set", urlEnv)
	}
	return u
}

// schemaURL returns the URL of a new schema of its own for the test, which is dropped
// when the test ends, and the schema's name.
func schemaURL(tb testing.TB) (string, string) {
	tb.Helper()
	base := testURL(tb)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "sluice_test_" + hex.EncodeToString(b)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s: %v", urlEnv, err)
	}
	q := u.Query()
	q.Set(postgres.SchemaParam, schema)
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

// openStore opens a store in a new schema; it is closed, and its schema dropped, when the
// test ends.
func openStore(tb testing.TB) *postgres.Store {
	tb.Helper()
	u, _ := schemaURL(tb)
	st, err := postgres.Open(tb.Context(), u)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) sluice.Store {
		u, _ := schemaURL(t)
		st, err := postgres.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}
