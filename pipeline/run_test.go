package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/sim"
)

// threeTasks is a pipeline of three tasks, the third using the first's output.
const threeTasks = `
model: gpt-4o-mini
input: docs.csv
id: doc_id
tasks:
  summary:
    system: "Summarise in two sentences."
    user: "SUMMARY {{.text}}"
    max_tokens: 120
  category:
    user: "CATEGORY {{.text}}"
  headline:
    user: "HEADLINE {{.tasks.summary}}"
`

func writeDocs(t *testing.T, dir string) {
	t.Helper()
	long := strings.Repeat("A very long document about chips and markets. ", 2000)
	writeFile(t, dir, "docs.csv", "doc_id,text\n"+
		"d1,Acme Corp announced a chip.\n"+
		"d2,\"Zürich café — 東京, naïve 🚀\"\n"+
		"d3\n"+
		"d4,"+long+"\n")
}

func TestRunThreeTasksAndCache(t *testing.T) {
	dir := t.TempDir()
	writeDocs(t, dir)
	h := newHarness(t, sim.Config{})
	spec := parse(t, dir, threeTasks)

	table, rep, sent := h.run(spec, true, nil)
	if sent != 9 || rep.Requests != 9 || rep.CacheHits != 0 || rep.OK != 9 || rep.Failed != 0 || rep.Invalid != 3 {
		t.Fatalf("first run: %d requests reached the simulator, report %+v; want 9 sent, 9 cells ok, the invalid row's 3", sent, rep)
	}
	for _, id := range []string{"d1", "d2", "d4"} {
		sum := cell(t, table, id, "summary")
		if !sum.OK() || !strings.HasPrefix(sum.Text, "SUMMARY ") || sum.Requests != 1 || sum.Usage.PromptTokens == 0 {
			t.Errorf("%s summary: %+v", id, sum)
		}
		// The headline's prompt carried the summary: the simulator echoes it.
		if head := cell(t, table, id, "headline"); !strings.HasPrefix(head.Text, "HEADLINE "+sum.Text[:40]) {
			t.Errorf("%s headline %.80q does not carry the summary %.40q", id, head.Text, sum.Text)
		}
	}
	if !strings.Contains(cell(t, table, "d2", "category").Text, "Zürich café — 東京, naïve 🚀") {
		t.Errorf("unicode lost: %q", cell(t, table, "d2", "category").Text)
	}
	for _, task := range []string{"summary", "category", "headline"} {
		c := cell(t, table, "d3", task)
		if c.OK() || !strings.Contains(c.Err, `row 3 (id "d3"): field "text": missing`) {
			t.Errorf("d3 %s: %+v, want the row's error", task, c)
		}
	}

	// Unchanged: everything comes from the cache, nothing is sent.
	table, rep, sent = h.run(spec, true, nil)
	if sent != 0 || rep.Requests != 0 || rep.CacheHits != 9 || rep.OK != 9 || rep.CostUSD != 0 {
		t.Fatalf("rerun: %d requests reached the simulator, report %+v; want 0 sent, 9 hits", sent, rep)
	}
	if c := cell(t, table, "d1", "headline"); !c.Cached || c.Requests != 0 {
		t.Errorf("rerun d1 headline: %+v, want cached", c)
	}

	// One prompt changed: only that task runs again.
	changed := parse(t, dir, strings.Replace(threeTasks, `"CATEGORY {{.text}}"`, `"KIND {{.text}}"`, 1))
	table, rep, sent = h.run(changed, true, nil)
	if sent != 3 || rep.Requests != 3 || rep.CacheHits != 6 {
		t.Fatalf("changed category: %d requests reached the simulator, report %+v; want 3 sent, 6 hits", sent, rep)
	}
	if c := cell(t, table, "d1", "category"); c.Cached || !strings.HasPrefix(c.Text, "KIND ") {
		t.Errorf("changed category: %+v", c)
	}

	// --no-cache sends everything again.
	_, rep, sent = h.run(spec, false, nil)
	if sent != 9 || rep.CacheHits != 0 {
		t.Errorf("without the cache: %d sent, report %+v; want 9", sent, rep)
	}
}

func TestRunDuplicateDocumentsSendOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "docs.jsonl", `{"id":"a","text":"same"}`+"\n"+`{"id":"b","text":"same"}`+"\n")
	h := newHarness(t, sim.Config{})
	spec := parse(t, dir, "model: gpt-4o-mini\ninput: docs.jsonl\nid: id\ntasks:\n  s: {user: \"{{.text}}\"}\n")
	table, rep, sent := h.run(spec, false, nil)
	if sent != 1 || rep.CacheHits != 1 || !cell(t, table, "b", "s").OK() || cell(t, table, "a", "s").Text != cell(t, table, "b", "s").Text {
		t.Errorf("%d sent, report %+v", sent, rep)
	}
}

func TestWriteTable(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "docs.jsonl", `{"id":"a","text":"x"}`+"\n"+`{"id":"b"}`+"\n")
	h := newHarness(t, sim.Config{})
	spec := parse(t, dir, "model: gpt-4o-mini\ninput: docs.jsonl\nid: id\ntasks:\n  s: {user: \"ECHO {{.text}}\", max_tokens: 3}\n")
	table, _, _ := h.run(spec, false, nil)
	var csvOut, jsonOut bytes.Buffer
	if err := table.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	if err := table.WriteJSONL(&jsonOut); err != nil {
		t.Fatal(err)
	}
	a := cell(t, table, "a", "s")
	wantCSV := fmt.Sprintf("id,s,status,tokens,cost_usd,cached\na,ECHO x,ok,%d,0.000000,0\n"+
		"b,\"error: row 2 (id \"\"b\"\"): field \"\"text\"\": missing (used by tasks.s.user)\",invalid,0,0.000000,0\n", a.Usage.Total())
	if csvOut.String() != wantCSV {
		t.Errorf("csv:\n%s\nwant:\n%s", csvOut.String(), wantCSV)
	}
	lines := strings.Split(strings.TrimSpace(jsonOut.String()), "\n")
	var row map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &row); err != nil {
		t.Fatal(err)
	}
	if e, _ := row["s"].(map[string]any); e == nil || !strings.Contains(e["error"].(string), "missing") || row["status"] != "invalid" {
		t.Errorf("jsonl row 2: %s", lines[1])
	}
}
