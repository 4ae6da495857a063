package postgres_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/internal/pgtest"
	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/postgres"
	"github.com/sluice-llm/sluice/service"
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
	_ service.Store          = (*postgres.Store)(nil) // sluice serve
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testURL returns the test database's URL, or skips the test.
func testURL(tb testing.TB) string { return pgtest.URL(tb) }

// schemaURL returns the URL of a new schema of its own for the test, which is dropped
// when the test ends, and the schema's name.
func schemaURL(tb testing.TB) (string, string) { return pgtest.SchemaURL(tb) }

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

func TestConformanceReopen(t *testing.T) {
	testURL(t)
	storetest.RunReopen(t, func(t *testing.T) func() sluice.Store {
		u, _ := schemaURL(t)
		return func() sluice.Store {
			st, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	})
}
