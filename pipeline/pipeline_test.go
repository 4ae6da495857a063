package pipeline_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const simURL = "http://sim.sluice.invalid/v1"

// harness is a simulator, a store and the means to run pipelines against them.
type harness struct {
	t     *testing.T
	sim   *sim.Server
	up    *openai.Client
	store *sqlite.Store
	cfg   sluice.Config
	// up2, when set, is the upstream runs send through instead of up.
	up2 sluice.Upstream
}

func newHarness(t *testing.T, simCfg sim.Config) *harness {
	t.Helper()
	s := sim.New(simCfg)
	t.Cleanup(s.Close)
	up, err := openai.New(openai.Config{BaseURL: simURL, HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &harness{t: t, sim: s, up: up, store: st, cfg: sluice.Config{Concurrency: 8, MaxAttempts: 2}}
}

// parse parses a pipeline from text, its input resolved against dir.
func parse(t *testing.T, dir, text string) *pipeline.Spec {
	t.Helper()
	spec, err := pipeline.Parse(strings.NewReader(text), filepath.Join(dir, "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func plan(t *testing.T, spec *pipeline.Spec) *pipeline.Plan {
	t.Helper()
	docs, err := pipeline.ReadFile(spec.Input, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.NewPlan(spec, docs, tokens.Default(), nil)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// run runs spec over its input and returns the table, the report and how many requests
// the simulator received.
func (h *harness) run(spec *pipeline.Spec, cache bool, served []string) (*pipeline.Table, *pipeline.Report, int64) {
	h.t.Helper()
	var up sluice.Upstream = h.up
	if h.up2 != nil {
		up = h.up2
	}
	eng, err := sluice.New(h.store, up, h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := pipeline.RunConfig{BaseURL: simURL, Estimator: tokens.Default(), Served: served}
	if cache {
		cfg.Cache = h.store
	}
	before := h.sim.Stats().Requests
	table, rep, err := pipeline.Run(context.Background(), eng, h.store, plan(h.t, spec), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		if err := table.Close(); err != nil {
			h.t.Error(err)
		}
	})
	return table, rep, h.sim.Stats().Requests - before
}

// writeFile writes content to dir/name and returns its path (internal/testutil).
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	return testutil.WriteFile(t, dir, name, content)
}

// answeredCell is a cell with its answer read back.
type answeredCell struct {
	pipeline.Cell
	Text  string
	Value json.RawMessage
}

// cell returns the cell of the document with the given id and task.
func cell(t *testing.T, table *pipeline.Table, id, task string) *answeredCell {
	t.Helper()
	for i, d := range table.Docs {
		if d.ID != id {
			continue
		}
		for j, tk := range table.Spec.Tasks {
			if tk.Name == task {
				text, value, err := table.Answer(i, j)
				if err != nil {
					t.Fatal(err)
				}
				return &answeredCell{Cell: table.Cell(i, j), Text: text, Value: value}
			}
		}
	}
	t.Fatalf("no cell %s/%s", id, task)
	return nil
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
