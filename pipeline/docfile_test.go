package pipeline_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/tokens"
)

// TestReadFileRereadsDocuments checks that documents read by ReadFile, whose fields are
// read again from the file by offset, render exactly as the same documents held in
// memory (ReadCSV, ReadJSONL): quoted newlines, a byte order mark, blank lines, CRLF,
// unicode, a row shorter than the header and bad rows in between.
func TestReadFileRereadsDocuments(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
	}{
		{"csv", "docs.csv", "\ufeffid,title,text\r\n" +
			"a,One,\"first line\nsecond, \"\"quoted\"\" line\"\r\n" +
			"b,Two,Zürich café — 東京 🚀\r\n" +
			"c,Three,too,many,cells\r\n" +
			"d,Four\r\n" +
			"e,Five,\"\"\r\n"},
		{"jsonl", "docs.jsonl", `{"id":"a","title":"One","text":"first\nsecond \"quoted\""}` + "\n" +
			"\n" +
			`{"id":"b","title":"Two","text":"Zürich café — 東京 🚀","n":1.50}` + "\r\n" +
			"not json\n" +
			`{"id":"d","title":"Four","text":"` + strings.Repeat("long ", 300000) + `"}` + "\n" +
			`{"id":"e","title":"Five","text":["x",{"y":null}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tc.file, tc.content)
			spec := parse(t, dir, `
model: gpt-4o-mini
input: `+tc.file+`
id: id
tasks:
  s: {system: "About {{.title}}.", user: "{{.text}}"}
  t: {user: "{{.title}}"}
`)
			fromFile := plan(t, spec)
			var inMemory []*pipeline.Document
			var err error
			if tc.name == "csv" {
				inMemory, err = pipeline.ReadCSV(strings.NewReader(tc.content), "id")
			} else {
				inMemory, err = pipeline.ReadJSONL(strings.NewReader(tc.content), "id")
			}
			if err != nil {
				t.Fatal(err)
			}
			want := pipeline.NewPlan(spec, inMemory, tokens.Default(), nil)
			var got, wantBatch bytes.Buffer
			if _, err := pipeline.WriteBatch(&got, fromFile); err != nil {
				t.Fatal(err)
			}
			if _, err := pipeline.WriteBatch(&wantBatch, want); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(got.String(), "\n"); n < 6 {
				t.Errorf("%d requests, want at least 6:\n%s", n, got.String())
			}
			if diff := cmp.Diff(wantBatch.String(), got.String()); diff != "" {
				t.Errorf("requests from the file differ from those in memory (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want.Problems, fromFile.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			for _, d := range fromFile.Docs {
				if d.Err == nil && d.Fields != nil {
					t.Errorf("row %d: fields kept in memory", d.Row)
				}
			}
		})
	}
}

// TestReadFileChanged checks that a documents file changed after it was read is not
// read again silently: the plan refuses the rows that changed (all of them when the
// size did), naming the file.
func TestReadFileChanged(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "docs.csv", "id,text\na,alpha\nb,beta\n")
	spec := parse(t, dir, `
model: gpt-4o-mini
input: docs.csv
id: id
tasks:
  s: {user: "{{.text}}"}
`)
	docs, err := pipeline.ReadFile(spec.Input, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, content string
		runnable      int
	}{
		{"same size", "id,text\nx,gamma\nb,beta\n", 1},
		{"longer", "id,text\na,alpha\nb,beta\nc,gamma\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			p := pipeline.NewPlan(spec, docs, tokens.Default(), nil)
			t.Cleanup(func() { p.Close() })
			if p.Runnable() != tc.runnable || len(p.Problems) != 2-tc.runnable || p.Problems[0].Row != 1 ||
				!strings.Contains(p.Problems[0].Error(), filepath.Base(path)+" changed since it was read") {
				t.Errorf("runnable %d, problems %v; want %d runnable, the others refused as changed", p.Runnable(), p.Problems, tc.runnable)
			}
		})
	}
}
