package migration_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice/internal/migration"
)

func TestLoadInVersionOrder(t *testing.T) {
	ms, err := migration.Load(fstest.MapFS{
		"migration/0010_c.sql": {Data: []byte(`C`)},
		"migration/0002_b.sql": {Data: []byte(`B`)},
		"migration/0001_a.sql": {Data: []byte(`A`)},
		"other/0003_x.sql":     {Data: []byte(`X`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []migration.Migration{{Version: 1, Name: "0001_a", SQL: "A"}, {Version: 2, Name: "0002_b", SQL: "B"}, {Version: 10, Name: "0010_c", SQL: "C"}}
	if diff := cmp.Diff(want, ms); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadRefuses(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number":       {"migration/init.sql": {}},
		"version 0":       {"migration/0_init.sql": {}},
		"not a number":    {"migration/x1_init.sql": {}},
		"a version twice": {"migration/0001_a.sql": {}, "migration/01_b.sql": {}},
	} {
		if ms, err := migration.Load(fsys); err == nil {
			t.Errorf("%s: Load = %+v, want an error", name, ms)
		}
	}
}
