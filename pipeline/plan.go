package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice"
)

// CostFunc prices usage of a model in USD; ok is false when the model has no price.
type CostFunc func(model string, u sluice.Usage) (usd float64, ok bool)

// Plan is what running a pipeline over its documents would send, found before anything
// is sent: every document checked against every template, every first-stage request
// rendered and counted.
type Plan struct {
	Spec *Spec
	Docs []*Document
	// Problems lists every row that cannot be run and why, in row order: one error per
	// row and field.
	Problems []*RowError
	// Tasks estimates each task, in the spec's order.
	Tasks []*TaskPlan

	src *docFile // where Docs are read again from; nil when they are in memory
}

// Close closes the documents' file, when ReadFile read them; the plan cannot be run
// after it.
func (p *Plan) Close() error {
	if p.src == nil {
		return nil
	}
	return p.src.close()
}

// TaskPlan is the estimate for one task over every runnable document.
type TaskPlan struct {
	Task  string `json:"task"`
	Model string `json:"model"`
	Stage int    `json:"stage"`
	// Requests is how many requests the task sends at first (retries and fallbacks add
	// more).
	Requests int `json:"requests"`
	// PromptTokens is their prompts, counted with the model's tokenizer; for a task that
	// uses other tasks' outputs, without those outputs.
	PromptTokens int64 `json:"prompt_tokens"`
	// MaxOutputTokens is their max_tokens summed; 0 when the task sets none.
	MaxOutputTokens int64 `json:"max_output_tokens"`
	// CostUSD is the estimate: the prompts plus max_tokens of output (or
	// GuessOutputTokens per request when the task sets none), at the model's price.
	CostUSD float64 `json:"cost_usd"`
	// Priced is false when the model has no price (CostUSD is then 0).
	Priced bool `json:"priced"`
	// Sample is the body of the first request.
	Sample json.RawMessage `json:"sample,omitempty"`
}

// GuessOutputTokens is the output a request without max_tokens is assumed to write in a
// plan's cost estimate.
const GuessOutputTokens = 256

// CostUSD is the plan's estimated cost over all tasks.
func (p *Plan) CostUSD() float64 {
	var c float64
	for _, t := range p.Tasks {
		c += t.CostUSD
	}
	return c
}

// Requests is how many requests the plan sends at first.
func (p *Plan) Requests() int {
	n := 0
	for _, t := range p.Tasks {
		n += t.Requests
	}
	return n
}

// Runnable reports how many documents can be run.
func (p *Plan) Runnable() int {
	n := 0
	for _, d := range p.Docs {
		if d.Err == nil {
			n++
		}
	}
	return n
}

// NewPlan checks docs against spec and estimates what running them would send. est
// counts tokens; cost prices them (nil: no cost). Problems with rows are in the plan,
// and the rows' Err; they are not an error.
func NewPlan(spec *Spec, docs []*Document, est sluice.Estimator, cost CostFunc) *Plan {
	p := &Plan{Spec: spec, Docs: docs}
	for _, t := range spec.Tasks {
		p.Tasks = append(p.Tasks, &TaskPlan{Task: t.Name, Model: t.Model, Stage: t.Stage, Priced: cost != nil})
	}
	for _, d := range docs {
		if d.src != nil && p.src == nil {
			p.src = d.src
		}
		if d.Err != nil {
			p.Problems = append(p.Problems, d.Err)
			continue
		}
		fields, err := d.fields()
		if err != nil {
			d.Err = &RowError{Row: d.Row, ID: d.ID, Msg: err.Error()}
			p.Problems = append(p.Problems, d.Err)
			continue
		}
		if errs := checkFields(spec, d, fields); len(errs) > 0 {
			d.Err = errs[0]
			p.Problems = append(p.Problems, errs...)
			continue
		}
		for i, t := range spec.Tasks {
			body, err := t.render(fields, nil, t.Model, t.MaxTokens)
			if err != nil {
				d.Err = &RowError{Row: d.Row, ID: d.ID, Msg: err.Error()}
				p.Problems = append(p.Problems, d.Err)
				break
			}
			p.Tasks[i].add(t, body, est, cost)
		}
	}
	return p
}

// checkFields checks that the document has every field the templates use.
func checkFields(spec *Spec, d *Document, fields map[string]any) []*RowError {
	var errs []*RowError
	reported := map[string]bool{}
	for _, t := range spec.Tasks {
		for _, f := range sortedKeys(t.fields) {
			if v, ok := fields[f]; (ok && v != nil) || reported[f] {
				continue
			}
			reported[f] = true
			errs = append(errs, &RowError{Row: d.Row, ID: d.ID, Field: f, Msg: "missing (used by " + t.fields[f] + ")"})
		}
	}
	return errs
}

func (tp *TaskPlan) add(t *Task, body []byte, est sluice.Estimator, cost CostFunc) {
	tp.Requests++
	if tp.Sample == nil {
		tp.Sample = body
	}
	e, err := est.Estimate(&sluice.Request{Method: "POST", URL: sluice.EndpointChatCompletions, Body: body})
	if err != nil {
		return
	}
	tp.PromptTokens += e.PromptTokens
	tp.MaxOutputTokens += e.MaxOutputTokens
	if cost != nil {
		out := e.MaxOutputTokens
		if out == 0 {
			out = GuessOutputTokens
		}
		c, ok := cost(t.Model, sluice.Usage{PromptTokens: e.PromptTokens, CompletionTokens: out})
		tp.CostUSD += c
		tp.Priced = tp.Priced && ok
	}
}

// chatBody is a chat completions request as a task sends it.
type chatBody struct {
	Model          string          `json:"model"`
	Messages       []chatMessage   `json:"messages"`
	MaxTokens      int64           `json:"max_tokens,omitempty"`
	Temperature    *float64        `json:"temperature,omitempty"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// render builds the task's request body for a document's fields, given the outputs of
// the tasks it depends on (nil at plan time: they render as empty).
func (t *Task) render(fields map[string]any, outputs map[string]any, model string, maxTokens int64) ([]byte, error) {
	sys, user, err := t.messages(fields, outputs)
	if err != nil {
		return nil, err
	}
	b := chatBody{Model: model, MaxTokens: maxTokens, Temperature: t.Temperature, ResponseFormat: t.ResponseFormat}
	if t.system != nil {
		b.Messages = append(b.Messages, chatMessage{Role: "system", Content: sys})
	}
	b.Messages = append(b.Messages, chatMessage{Role: "user", Content: user})
	return encodeBody(t, b)
}

// messages renders the task's system (when it has one) and user messages for a document.
func (t *Task) messages(fields map[string]any, outputs map[string]any) (sys, user string, err error) {
	data := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		data[k] = v
	}
	tasks := make(map[string]any, len(t.Deps))
	for _, dep := range t.Deps {
		if v, ok := outputs[dep]; ok {
			tasks[dep] = v
		} else {
			tasks[dep] = ""
		}
	}
	data[TasksKey] = tasks
	if t.system != nil {
		if sys, err = execute(t.system, data); err != nil {
			return "", "", err
		}
	}
	if user, err = execute(t.user, data); err != nil {
		return "", "", err
	}
	return sys, user, nil
}

// encodeBody encodes a request body of task t.
func encodeBody(t *Task, b chatBody) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, fmt.Errorf("tasks.%s: encode request: %w", t.Name, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// CustomID is the custom_id of a document's request for a task: "ID/task".
func CustomID(docID, task string) string { return docID + "/" + task }

// SplitCustomID splits a custom_id made by CustomID.
func SplitCustomID(id string) (docID, task string, ok bool) {
	i := strings.LastIndexByte(id, '/')
	if i < 0 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}
