package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/tokens"
)

func TestPlanBadRows(t *testing.T) {
	spec, err := pipeline.Parse(strings.NewReader(readTestdata(t, "pipeline.yaml")), filepath.Join("testdata", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := plan(t, spec)
	var problems []string
	for _, e := range p.Problems {
		problems = append(problems, e.Error())
	}
	want := []string{`row 3 (id "d3"): field "text": missing (used by tasks.summary.user)`}
	if strings.Join(problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
	if p.Runnable() != 3 || p.Requests() != 9 {
		t.Errorf("%d runnable rows, %d requests; want 3 and 9", p.Runnable(), p.Requests())
	}
	var sample struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	if err := json.Unmarshal(p.Tasks[0].Sample, &sample); err != nil {
		t.Fatal(err)
	}
	if got := sample.Messages[1].Content; got != "Chips: Acme Corp announced a new chip designed by Ada Lovelace." {
		t.Errorf("first summary prompt %q", got)
	}
}

func TestPlanJSONLProblems(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("lorem ipsum ", 20000)
	writeFile(t, dir, "docs.jsonl", strings.Join([]string{
		`{"id":"a","text":"ok"}`,
		`{"id":"b"}`,
		`not json`,
		`{"text":"no id"}`,
		`{"id":"a","text":"again"}`,
		`{"id":7,"text":null}`,
		fmt.Sprintf(`{"id":"long","text":%q}`, long),
	}, "\n")+"\n")
	spec := parse(t, dir, "model: gpt-4o-mini\ninput: docs.jsonl\nid: id\ntasks:\n  s: {user: \"{{.text}}\", max_tokens: 10}\n")
	p := plan(t, spec)
	var got []string
	for _, e := range p.Problems {
		got = append(got, e.Error())
	}
	want := []string{
		`row 2 (id "b"): field "text": missing (used by tasks.s.user)`,
		`row 3: not a JSON object: invalid character 'o' in literal null (expecting 'u')`,
		`row 4: field "id": missing (it is the id field)`,
		`row 5 (id "a"): field "id": duplicate id: row 1 has it too`,
		`row 6 (id "7"): field "text": missing (used by tasks.s.user)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p.Tasks[0].Requests != 2 || p.Tasks[0].PromptTokens < 40000 {
		t.Errorf("%d requests, %d prompt tokens; want 2 and the long text counted", p.Tasks[0].Requests, p.Tasks[0].PromptTokens)
	}
}

func TestWriteBatch(t *testing.T) {
	spec, err := pipeline.Parse(strings.NewReader(readTestdata(t, "pipeline.yaml")), filepath.Join("testdata", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	counts, err := pipeline.WriteBatch(&buf, plan(t, spec))
	if err != nil {
		t.Fatal(err)
	}
	if counts.Requests != 6 || strings.Join(counts.Skipped, ",") != "headline" {
		t.Errorf("counts %+v, want 6 requests and headline skipped", counts)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var ids []string
	for _, l := range lines {
		var r sluice.Request
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if _, err := tokens.Default().Estimate(&r); err != nil || r.URL != sluice.EndpointChatCompletions {
			t.Errorf("line %s: %v", l, err)
		}
		ids = append(ids, r.CustomID)
	}
	if got := strings.Join(ids, " "); got != "d1/summary d1/category d2/summary d2/category d4/summary d4/category" {
		t.Errorf("custom ids %s", got)
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := readFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
