package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cliPipeline = `model: gpt-4o-mini
input: docs.csv
id: doc_id
tasks:
  summary: {user: "SUM {{.text}}", max_tokens: 60}
  category: {user: "CAT {{.text}}"}
  headline: {user: "HEAD {{.tasks.summary}}", max_tokens: 40}
`

func TestPipelineCLI(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "docs.csv", "doc_id,text\nd1,Acme announced a chip.\nd2,\"Zürich, 東京 🚀\"\nd3\n")
	spec := writeFile(t, dir, "pipeline.yaml", cliPipeline)
	store := filepath.Join(dir, "ledger.db")

	plan := runCLI(t, nil, "pipeline", "plan", spec)
	if plan.code != exitUsage || !strings.Contains(plan.stderr, `docs.csv: row 3 (id "d3"): field "text": missing (used by tasks.summary.user)`) ||
		!strings.Contains(plan.stdout, "first request of summary:") {
		t.Fatalf("plan: exit %d\n%s\n%s", plan.code, plan.stdout, plan.stderr)
	}
	render := runCLI(t, nil, "pipeline", "render", spec, "--skip-invalid", "-o", filepath.Join(dir, "batch.jsonl"))
	batch, _ := os.ReadFile(filepath.Join(dir, "batch.jsonl"))
	if render.code != exitOK || strings.Count(string(batch), "\n") != 4 || !strings.Contains(render.stderr, "left out (they use other tasks' outputs): headline") {
		t.Fatalf("render: exit %d\n%s\n%s", render.code, batch, render.stderr)
	}
	refused := runCLI(t, nil, "pipeline", "run", spec, "--sim", "--store", store, "-o", filepath.Join(dir, "out.csv"))
	if refused.code != exitUsage {
		t.Fatalf("run with a bad row: exit %d, want %d\n%s", refused.code, exitUsage, refused.stderr)
	}

	out := filepath.Join(dir, "out.jsonl")
	args := []string{"pipeline", "run", spec, "--sim", "--store", store, "-o", out, "--skip-invalid", "--json"}
	first := runCLI(t, nil, args...)
	var rep struct {
		Requests  int `json:"requests"`
		CacheHits int `json:"cache_hits"`
		OK        int `json:"ok"`
	}
	if err := json.Unmarshal([]byte(first.stdout), &rep); err != nil || first.code != exitFailed || rep.Requests != 6 || rep.OK != 6 {
		t.Fatalf("first run: exit %d, report %+v (%v)\n%s", first.code, rep, err, first.stderr)
	}
	rows := readRows(t, out)
	if len(rows) != 3 || rows[0]["status"] != "ok" || !strings.HasPrefix(rows[1]["category"].(string), "CAT Zürich, 東京 🚀") || rows[2]["status"] != "invalid" {
		t.Errorf("rows: %v", rows)
	}
	second := runCLI(t, nil, args...)
	if err := json.Unmarshal([]byte(second.stdout), &rep); err != nil || rep.Requests != 0 || rep.CacheHits != 6 {
		t.Fatalf("second run: report %+v (%v)\n%s", rep, err, second.stderr)
	}
	if again := readRows(t, out); again[0]["summary"] != rows[0]["summary"] || again[0]["cached"] != float64(3) {
		t.Errorf("second run's row 1: %v", again[0])
	}
	noCache := runCLI(t, nil, append(args, "--no-cache")...)
	if err := json.Unmarshal([]byte(noCache.stdout), &rep); err != nil || rep.Requests != 6 {
		t.Fatalf("--no-cache: report %+v (%v)", rep, err)
	}
}

func readRows(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		rows = append(rows, m)
	}
	return rows
}
