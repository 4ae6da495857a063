package pipeline_test

import (
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/pipeline"
)

func TestParseErrors(t *testing.T) {
	const head = "model: m\ninput: docs.csv\nid: id\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"no input", "id: id\ntasks: {a: {user: x}}", "input: missing"},
		{"input not csv or jsonl", "input: d.txt\nid: id\ntasks: {a: {user: x}}", "input: \"d.txt\": must end in .csv or .jsonl"},
		{"no id", "input: d.csv\ntasks: {a: {user: x}}", "id: missing"},
		{"no tasks", head, "tasks: missing"},
		{"unknown top-level field", head + "task: {}", "task: line 4: unknown field"},
		{"wrong type", head + "tasks: {a: {user: x, max_tokens: lots}}", "tasks.a: line 4: cannot unmarshal !!str `lots` into int64"},
		{"unknown field", head + "tasks: {a: {user: x, prompt: y}}", "tasks.a.prompt: line 4: unknown field (want one of fallback, max_tokens, model, pack, response_format, retries, system, temperature, user)"},
		{"no user", head + "tasks: {a: {system: x}}", "tasks.a.user: missing"},
		{"no model", "input: d.csv\nid: id\ntasks: {a: {user: x}}", "tasks.a.model: missing"},
		{"bad template", head + "tasks: {a: {user: \"{{.text\"}}", "tasks.a.user: template: line 1"},
		{"unknown dependency", head + "tasks: {a: {user: \"{{.tasks.b}}\"}}", `tasks.a: uses {{.tasks.b}}, but there is no task "b"`},
		{"cycle", head + "tasks: {a: {user: \"{{.tasks.b}}\"}, b: {user: \"{{.tasks.a}}\"}}", "tasks.a: dependency cycle: a → b → a"},
		{"bad max_tokens", head + "tasks: {a: {user: x, max_tokens: 0}}", "tasks.a.max_tokens: must be at least 1"},
		{"bad schema", head + "tasks: {a: {user: x, response_format: {json_schema: {type: 12}}}}", "tasks.a.response_format: json_schema.schema:"},
		{"bad format", head + "tasks: {a: {user: x, response_format: {type: xml}}}", "tasks.a.response_format: want"},
		{"bad task name", head + "tasks: {a-b: {user: x}}", "tasks.a-b: a task name must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pipeline.Parse(strings.NewReader(tt.yaml), "p.yaml")
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "p.yaml: ") {
				t.Errorf("error %q, want it to name p.yaml and contain %q", err, tt.want)
			}
		})
	}
}

func TestParseStagesAndFormats(t *testing.T) {
	spec, err := pipeline.Parse(strings.NewReader(`
model: gpt-4o-mini
input: docs.jsonl
id: id
tasks:
  summary: {user: "{{.text}}"}
  facts:
    user: "{{.text}}"
    model: gpt-4.1-nano
    fallback: [qwen-plus]
    response_format:
      json_schema: {type: object, properties: {people: {type: array}}, required: [people]}
  headline: {user: "{{.tasks.summary}} {{range .tasks.facts.people}}{{.}}{{end}}"}
`), "/p/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Input != "/p/docs.jsonl" || spec.Stages != 2 {
		t.Errorf("input %q stages %d, want /p/docs.jsonl and 2", spec.Input, spec.Stages)
	}
	facts, head := spec.Task("facts"), spec.Task("headline")
	if facts.Stage != 1 || head.Stage != 2 || strings.Join(head.Deps, ",") != "facts,summary" {
		t.Errorf("facts stage %d, headline stage %d deps %v", facts.Stage, head.Stage, head.Deps)
	}
	if !facts.JSON || facts.Schema == nil || strings.Join(facts.Models(), ",") != "gpt-4.1-nano,qwen-plus" {
		t.Errorf("facts: json %v schema %s models %v", facts.JSON, facts.Schema, facts.Models())
	}
	want := `{"json_schema":{"name":"facts","schema":{"properties":{"people":{"type":"array"}},"required":["people"],"type":"object"}},"type":"json_schema"}`
	if string(facts.ResponseFormat) != want {
		t.Errorf("response_format\n got %s\nwant %s", facts.ResponseFormat, want)
	}
}
