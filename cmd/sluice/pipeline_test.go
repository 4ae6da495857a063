package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
	// plan names --skip-invalid, and takes it.
	if !strings.Contains(plan.stderr, "--skip-invalid") {
		t.Errorf("plan does not name --skip-invalid: %s", plan.stderr)
	}
	if skip := runCLI(t, nil, "pipeline", "plan", spec, "--skip-invalid"); skip.code != exitOK {
		t.Errorf("plan --skip-invalid: exit %d\n%s", skip.code, skip.stderr)
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
		Invalid   int `json:"invalid"`
	}
	// Every request sent succeeded: the row left out by --skip-invalid is no failure.
	if err := json.Unmarshal([]byte(first.stdout), &rep); err != nil || first.code != exitOK || rep.Requests != 6 || rep.OK != 6 || rep.Invalid != 3 {
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

// TestPipelineBudget checks that --max-cost caps the whole pipeline, not each round: with
// a cap under what the pipeline costs but above what any one round costs, the run stops
// before the cap, exits with the budget status, and the cells it did not reach say why.
func TestPipelineBudget(t *testing.T) {
	dir := t.TempDir()
	var docs strings.Builder
	docs.WriteString("doc_id,text\n")
	for i := range 30 {
		fmt.Fprintf(&docs, "d%d,Acme announced chip number %d today.\n", i, i)
	}
	writeFile(t, dir, "docs.csv", docs.String())
	spec := writeFile(t, dir, "pipeline.yaml", cliPipeline)
	store := filepath.Join(dir, "ledger.db")
	var rep struct {
		Requests int     `json:"requests"`
		OK       int     `json:"ok"`
		Failed   int     `json:"failed"`
		CostUSD  float64 `json:"cost_usd"`
	}

	full := runCLI(t, nil, "pipeline", "run", spec, "--sim", "--store", store, "-o", filepath.Join(dir, "full.jsonl"), "--json")
	if err := json.Unmarshal([]byte(full.stdout), &rep); err != nil || full.code != exitOK || rep.Requests != 90 {
		t.Fatalf("uncapped run: exit %d, report %+v (%v)\n%s", full.code, rep, err, full.stderr)
	}
	// Stage 1 (60 requests) costs about 2/3 of the whole, stage 2 about 1/3: each round
	// alone fits under 80%, the pipeline does not.
	limit := rep.CostUSD * 0.8
	out := filepath.Join(dir, "capped.jsonl")
	capped := runCLI(t, nil, "pipeline", "run", spec, "--sim", "--store", store, "-o", out, "--json", "--no-cache",
		"--max-cost", strconv.FormatFloat(limit, 'g', -1, 64))
	if err := json.Unmarshal([]byte(capped.stdout), &rep); err != nil || capped.code != exitBudget {
		t.Fatalf("capped run: exit %d, want %d, report %+v (%v)\n%s", capped.code, exitBudget, rep, err, capped.stderr)
	}
	if rep.CostUSD > limit || rep.CostUSD == 0 || rep.OK == 0 || rep.Failed == 0 {
		t.Fatalf("capped run spent $%v of $%v: %+v", rep.CostUSD, limit, rep)
	}
	if !strings.Contains(capped.stderr, "budget exhausted") {
		t.Errorf("stderr does not name the budget:\n%s", capped.stderr)
	}
	for _, line := range strings.Split(capped.stderr, "\n") {
		if strings.Contains(line, "budget exhausted") && (strings.Count(line, "sluice:") != 1 || strings.Count(line, "budget exhausted") != 1) {
			t.Errorf("the budget stop is not said once, prefixed once: %q", line)
		}
	}
	var stopped int
	for _, row := range readRows(t, out) {
		for _, task := range []string{"summary", "category", "headline"} {
			if cell, _ := row[task].(map[string]any); cell != nil && strings.Contains(fmt.Sprint(cell["error"]), "budget exhausted") {
				stopped++
			}
		}
	}
	if stopped != rep.Failed {
		t.Errorf("%d cells say budget exhausted, want the %d failed", stopped, rep.Failed)
	}
	if rep.Requests != rep.OK {
		t.Errorf("%d requests reported sent, want the %d answered", rep.Requests, rep.OK)
	}
	// A higher budget finishes the rest; what was answered comes from the cache.
	answered := rep.OK
	rest := runCLI(t, nil, "pipeline", "run", spec, "--sim", "--store", store, "-o", out, "--json", "--max-cost", "1")
	if err := json.Unmarshal([]byte(rest.stdout), &rep); err != nil || rest.code != exitOK || rep.OK != 90 || rep.Requests > 90-answered {
		t.Fatalf("rerun with a higher budget: exit %d, report %+v (%v), want at most %d sent\n%s", rest.code, rep, err, 90-answered, rest.stderr)
	}
}

// TestPipelinePackFallback: the simulator echoes a packed request's prompt, which is no
// answer, so every document gets its own request and the table is complete.
func TestPipelinePackFallback(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "docs.csv", "doc_id,text\nd1,Acme announced a chip.\nd2,Globex sold a plant.\nd3,Initech hired.\n")
	spec := writeFile(t, dir, "pipeline.yaml", "model: gpt-4o-mini\ninput: docs.csv\nid: doc_id\ntasks:\n  category: {user: \"CAT {{.text}}\", pack: 2}\n")
	out := filepath.Join(dir, "out.jsonl")
	res := runCLI(t, nil, "pipeline", "run", spec, "--sim", "--store", filepath.Join(dir, "ledger.db"), "-o", out, "--json")
	var rep struct {
		Requests int `json:"requests"`
		OK       int `json:"ok"`
		Packed   int `json:"packed"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != exitOK || rep.Requests != 2+3 || rep.OK != 3 || rep.Packed != 0 {
		t.Fatalf("exit %d, report %+v (%v)\n%s", res.code, rep, err, res.stderr)
	}
	if !strings.Contains(res.stderr, "stage 1, packed: 0 packs answered from the cache, 2 to send") {
		t.Errorf("stderr does not show the packs:\n%s", res.stderr)
	}
	for i, row := range readRows(t, out) {
		if s, _ := row["category"].(string); !strings.HasPrefix(s, "CAT ") {
			t.Errorf("row %d: %v", i+1, row)
		}
	}
}

// pipeline run shows each round's progress as run does.
func TestPipelineShowsProgress(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "docs.csv", "doc_id,text\nd1,Acme announced a chip.\nd2,Bosch and Siemens.\n")
	spec := writeFile(t, dir, "pipeline.yaml", cliPipeline)
	res := runCLI(t, nil, "pipeline", "run", spec, "--sim", "--store", filepath.Join(dir, "s.db"), "-o", filepath.Join(dir, "out.csv"),
		"--progress", "log", "--log-interval", "1ms")
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if !regexp.MustCompile(`\d+/\d+ done \(\d+ failed\), \d+ in flight, .* tok/s, \$`).MatchString(res.stderr) {
		t.Errorf("no progress line:\n%s", res.stderr)
	}
}
