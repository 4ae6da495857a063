package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// Defaults of a Spec.
const (
	// DefaultRetries is how many times a task whose answer is invalid (fails its JSON
	// Schema, or was cut off at max_tokens) is asked again, per model.
	DefaultRetries = 2
	// DefaultMaxTokensCap bounds how far max_tokens grows when a truncated answer is
	// retried with a doubled max_tokens.
	DefaultMaxTokensCap = 16384
)

// TasksKey is the name under which templates see the outputs of earlier tasks:
// {{.tasks.summary}}. A document field of that name is hidden by it.
const TasksKey = "tasks"

// Spec is a parsed and validated pipeline file.
type Spec struct {
	// Path is the file the spec was read from ("" when parsed from a reader).
	Path string
	// Model is the default model of every task.
	Model string
	// Input is the documents file, .csv or .jsonl, relative to the spec's directory.
	Input string
	// ID is the document field that identifies a document.
	ID string
	// Tasks are the tasks in the order the file lists them.
	Tasks []*Task
	// Stages is how many stages the tasks' dependencies make: a task of stage n uses the
	// outputs of tasks of stages before n only.
	Stages int
}

// Task is one prompt run on every document.
type Task struct {
	// Name is the task's key in the file, and its column in the table.
	Name string
	// System and User are Go templates over the document's fields (and the outputs of
	// earlier tasks, under .tasks). System may be empty.
	System, User string
	// Model is the task's model (the spec's when the file does not set one); Fallback
	// lists models tried in order when the primary keeps failing.
	Model    string
	Fallback []string
	// MaxTokens bounds the answer (0: no bound); Temperature is sent when set.
	MaxTokens   int64
	Temperature *float64
	// ResponseFormat is sent as the request's response_format (nil: none). Schema is its
	// JSON Schema, against which answers are validated (nil: not validated).
	ResponseFormat json.RawMessage
	Schema         json.RawMessage
	// JSON is set when the answer must be JSON (a json_object or json_schema format).
	JSON bool
	// Retries is how many times an invalid answer is asked again per model.
	Retries int
	// Pack, when more than 1, puts up to Pack documents' prompts into one request that
	// asks for a JSON array of answers keyed by document id; a document the answer does
	// not cover gets its own request. 0 or 1: one request per document.
	Pack int
	// Deps are the tasks whose outputs the templates use; Stage is 1 for a task without
	// dependencies, otherwise one more than its latest dependency's.
	Deps  []string
	Stage int

	system, user *template.Template
	fields       map[string]string // document fields used → the template that uses it
	schema       *schema
}

// SpecError is a problem with a pipeline file, naming the field at fault
// ("tasks.summary.user").
type SpecError struct {
	Path  string // the file, "" when unknown
	Field string
	Msg   string
}

func (e *SpecError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// fileSpec is the file's shape.
type fileSpec struct {
	Model string    `yaml:"model"`
	Input string    `yaml:"input"`
	ID    string    `yaml:"id"`
	Tasks yaml.Node `yaml:"tasks"`
}

type fileTask struct {
	System         string         `yaml:"system"`
	User           string         `yaml:"user"`
	Model          string         `yaml:"model"`
	Fallback       []string       `yaml:"fallback"`
	MaxTokens      *int64         `yaml:"max_tokens"`
	Temperature    *float64       `yaml:"temperature"`
	ResponseFormat map[string]any `yaml:"response_format"`
	Retries        *int           `yaml:"retries"`
	Pack           *int           `yaml:"pack"`
}

var taskName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Parse reads a pipeline file from r. path names the file in errors and anchors a
// relative input path; it may be "".
func Parse(r io.Reader, path string) (*Spec, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read pipeline: %w", err)
	}
	fail := func(field, format string, args ...any) error {
		return &SpecError{Path: path, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		// yaml's syntax errors have no type (a *yaml.TypeError is not a syntax error).
		return nil, fail("", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return nil, fail("", "empty file")
	}
	var f fileSpec
	if err := decodeStrict(root.Content[0], "", &f); err != nil {
		return nil, fail(err.Field, "%s", err.Msg)
	}
	s := &Spec{Path: path, Model: f.Model, Input: f.Input, ID: f.ID}
	switch {
	case s.Input == "":
		return nil, fail("input", "missing: name the documents file (.csv or .jsonl)")
	case inputFormat(s.Input) == "":
		return nil, fail("input", "%q: must end in .csv or .jsonl", s.Input)
	case s.ID == "":
		return nil, fail("id", "missing: name the field that identifies a document")
	}
	if path != "" && !filepath.IsAbs(s.Input) {
		s.Input = filepath.Join(filepath.Dir(path), s.Input)
	}
	if f.Tasks.Kind != yaml.MappingNode || len(f.Tasks.Content) == 0 {
		return nil, fail("tasks", "missing: give at least one task")
	}
	for i := 0; i+1 < len(f.Tasks.Content); i += 2 {
		name := f.Tasks.Content[i].Value
		field := "tasks." + name
		if !taskName.MatchString(name) {
			return nil, fail(field, "a task name must be letters, digits and _, not starting with a digit")
		}
		if slices.ContainsFunc(s.Tasks, func(t *Task) bool { return t.Name == name }) {
			return nil, fail(field, "defined twice")
		}
		if name == s.ID {
			return nil, fail(field, "a task must not have the id field's name")
		}
		var ft fileTask
		if err := decodeStrict(f.Tasks.Content[i+1], field, &ft); err != nil {
			return nil, fail(err.Field, "%s", err.Msg)
		}
		t, err := newTask(name, s.Model, &ft)
		if err != nil {
			var se *SpecError
			if errors.As(err, &se) {
				se.Path = path
			}
			return nil, err
		}
		s.Tasks = append(s.Tasks, t)
	}
	if err := s.order(); err != nil {
		var se *SpecError
		if errors.As(err, &se) {
			se.Path = path
		}
		return nil, err
	}
	return s, nil
}

// decodeStrict decodes the mapping n, the file's field named field, into the struct v,
// refusing keys v has no field for.
func decodeStrict(n *yaml.Node, field string, v any) *SpecError {
	join := func(k string) string {
		if field == "" {
			return k
		}
		return field + "." + k
	}
	if n.Kind != yaml.MappingNode {
		return &SpecError{Field: field, Msg: fmt.Sprintf("line %d: want a mapping", n.Line)}
	}
	known := map[string]bool{}
	rt := reflect.TypeOf(v).Elem()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		known[name] = true
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !known[k.Value] {
			return &SpecError{Field: join(k.Value), Msg: fmt.Sprintf("line %d: unknown field (want one of %s)", k.Line, strings.Join(sortedKeys(known), ", "))}
		}
	}
	if err := n.Decode(v); err != nil {
		msg := err.Error()
		if te, ok := errors.AsType[*yaml.TypeError](err); ok { // its lines, without yaml's heading
			msg = strings.Join(strings.Fields(strings.Join(te.Errors, " ")), " ")
		}
		return &SpecError{Field: field, Msg: msg}
	}
	return nil
}

func newTask(name, model string, ft *fileTask) (*Task, error) {
	field := "tasks." + name
	fail := func(sub, format string, args ...any) error {
		f := field
		if sub != "" {
			f += "." + sub
		}
		return &SpecError{Field: f, Msg: fmt.Sprintf(format, args...)}
	}
	t := &Task{
		Name: name, System: ft.System, User: ft.User, Model: ft.Model, Fallback: ft.Fallback,
		Temperature: ft.Temperature, Retries: DefaultRetries, fields: map[string]string{},
	}
	if t.Model == "" {
		t.Model = model
	}
	switch {
	case t.Model == "":
		return nil, fail("model", "missing: set model here or at the top of the file")
	case strings.TrimSpace(t.User) == "":
		return nil, fail("user", "missing: the user message template")
	case slices.Contains(t.Fallback, ""):
		return nil, fail("fallback", "a fallback model must not be empty")
	}
	if ft.MaxTokens != nil {
		if *ft.MaxTokens < 1 {
			return nil, fail("max_tokens", "must be at least 1, got %d", *ft.MaxTokens)
		}
		t.MaxTokens = *ft.MaxTokens
	}
	if ft.Retries != nil {
		if *ft.Retries < 0 {
			return nil, fail("retries", "must not be negative, got %d", *ft.Retries)
		}
		t.Retries = *ft.Retries
	}
	if ft.Pack != nil {
		if *ft.Pack < 1 {
			return nil, fail("pack", "must be at least 1, got %d", *ft.Pack)
		}
		t.Pack = *ft.Pack
	}
	if ft.ResponseFormat != nil {
		if err := t.setFormat(ft.ResponseFormat); err != nil {
			return nil, fail("response_format", "%v", err)
		}
	}
	deps := map[string]bool{}
	var err error
	if t.System != "" {
		if t.system, err = parseTemplate(field+".system", t.System, t.fields, deps); err != nil {
			return nil, err
		}
	}
	if t.user, err = parseTemplate(field+".user", t.User, t.fields, deps); err != nil {
		return nil, err
	}
	for d := range deps {
		t.Deps = append(t.Deps, d)
	}
	slices.Sort(t.Deps)
	return t, nil
}

// setFormat reads a response_format: {type: json_object}, or {json_schema: {name,
// schema, strict}} (type json_schema implied), or {json_schema: SCHEMA} for short.
func (t *Task) setFormat(rf map[string]any) error {
	typ, _ := rf["type"].(string)
	js, hasSchema := rf["json_schema"]
	switch {
	case typ == "text" && !hasSchema:
		return nil
	case typ == "json_object" && !hasSchema:
		t.JSON = true
	case (typ == "" || typ == "json_schema") && hasSchema:
		m, ok := js.(map[string]any)
		if !ok {
			return errors.New("json_schema must be a mapping")
		}
		if _, full := m["schema"]; !full {
			m = map[string]any{"schema": m} // the short form: the schema itself
		}
		if _, ok := m["name"]; !ok {
			m["name"] = t.Name
		}
		sb, err := json.Marshal(m["schema"])
		if err != nil {
			return fmt.Errorf("json_schema.schema: %w", err)
		}
		if t.schema, err = compileSchema(sb); err != nil {
			return fmt.Errorf("json_schema.schema: %w", err)
		}
		t.Schema = sb
		t.JSON = true
		rf = map[string]any{"type": "json_schema", "json_schema": m}
	default:
		return errors.New(`want {type: json_object} or {json_schema: {name: …, schema: {…}}}`)
	}
	b, err := json.Marshal(rf)
	if err != nil {
		return err
	}
	t.ResponseFormat = b
	return nil
}

// order checks the dependencies and sets each task's stage.
func (s *Spec) order() error {
	byName := map[string]*Task{}
	for _, t := range s.Tasks {
		byName[t.Name] = t
	}
	for _, t := range s.Tasks {
		for _, d := range t.Deps {
			if byName[d] == nil {
				return &SpecError{Field: "tasks." + t.Name, Msg: fmt.Sprintf("uses {{.tasks.%s}}, but there is no task %q", d, d)}
			}
		}
	}
	const visiting = -1
	var visit func(t *Task, path []string) error
	visit = func(t *Task, path []string) error {
		switch t.Stage {
		case visiting:
			cycle := append(path[slices.Index(path, t.Name):], t.Name)
			return &SpecError{Field: "tasks." + t.Name, Msg: "dependency cycle: " + strings.Join(cycle, " → ")}
		case 0:
		default:
			return nil
		}
		t.Stage = visiting
		stage := 1
		for _, d := range t.Deps {
			if err := visit(byName[d], append(path, t.Name)); err != nil {
				return err
			}
			stage = max(stage, byName[d].Stage+1)
		}
		t.Stage = stage
		s.Stages = max(s.Stages, stage)
		return nil
	}
	for _, t := range s.Tasks {
		if err := visit(t, nil); err != nil {
			return err
		}
	}
	return nil
}

// Task returns the task with the given name, or nil.
func (s *Spec) Task(name string) *Task {
	for _, t := range s.Tasks {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Models returns the task's models in the order they are tried.
func (t *Task) Models() []string { return append([]string{t.Model}, t.Fallback...) }

// inputFormat is "csv" or "jsonl" by the file's extension, "" for neither.
func inputFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "csv"
	case ".jsonl", ".ndjson":
		return "jsonl"
	}
	return ""
}
