package pipeline

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice"
)

// Row statuses in the table.
const (
	StatusOK      = "ok"      // every task answered
	StatusFailed  = "failed"  // some task has an error instead of an answer
	StatusInvalid = "invalid" // the row could not be run (a missing field, a bad line)
)

// Table is the result of a run: one row per document, one cell per task. It keeps a
// compact record per cell; the answers themselves are in a temporary file until Close.
type Table struct {
	Spec *Spec
	Docs []*Document

	cells   []cell             // row after row, a cell per task
	errs    map[int]*cellError // the cells that have an error, by index in cells
	runErr  error              // why the run stopped early, if it did
	answers *answers
}

// Cell is one document's answer to one task, or why there is none. The answer itself is
// kept out of memory: Table.Answer reads it.
type Cell struct {
	// Model is the model that answered; "" when none did.
	Model string
	// Err says why there is no answer ("" when there is one); Errs lists the failures on
	// the way, one per model given up on (the primary's, before a fallback answered).
	Err  string
	Errs []string
	// Requests is how many requests this run sent for the cell, Usage and CostUSD what
	// they used; Cached is set when the answer came from the cache (or from an identical
	// request of another cell) at no cost.
	Requests int
	Usage    sluice.Usage
	CostUSD  float64
	Cached   bool
}

// OK reports whether the cell has an answer.
func (c *Cell) OK() bool { return c.Model != "" && c.Err == "" }

// cell is what a table keeps of a cell.
type cell struct {
	ans      answerRef
	usage    sluice.Usage
	cost     float64
	requests int32
	model    int16 // 1 + the index of the answering model in the task's models; 0: none
	cached   bool
}

// cellError is a cell's error and the failures on the way.
type cellError struct {
	err  string
	errs []string
}

func newTable(p *Plan, tempDir string) (*Table, error) {
	a, err := newAnswers(tempDir)
	if err != nil {
		return nil, err
	}
	return &Table{
		Spec: p.Spec, Docs: p.Docs, answers: a,
		cells: make([]cell, len(p.Docs)*len(p.Spec.Tasks)),
		errs:  map[int]*cellError{},
	}, nil
}

// index is the index in cells of document row's cell for task.
func (t *Table) index(row, task int) int { return row*len(t.Spec.Tasks) + task }

func (t *Table) at(row, task int) *cell { return &t.cells[t.index(row, task)] }

// Cell returns document row's cell for task (indexes into Docs and Spec.Tasks). A cell
// without an answer has an error: the row's problem, the failures, or why the run did
// not reach it.
func (t *Table) Cell(row, task int) Cell {
	c := t.at(row, task)
	out := Cell{Requests: int(c.requests), Usage: c.usage, CostUSD: c.cost, Cached: c.cached}
	switch tk := t.Spec.Tasks[task]; {
	case c.model == 1:
		out.Model = tk.Model
	case c.model > 1:
		out.Model = tk.Fallback[c.model-2]
	}
	if e := t.errs[t.index(row, task)]; e != nil {
		out.Err, out.Errs = e.err, e.errs
	}
	switch {
	case t.Docs[row].Err != nil:
		out.Err = t.Docs[row].Err.Error()
	case out.Model == "" && out.Err == "" && t.runErr != nil:
		out.Err = "not run: " + t.runErr.Error()
	case out.Model == "" && out.Err == "":
		out.Err = "not run"
	}
	return out
}

// ok reports whether a cell has an answer.
func (t *Table) ok(row, task int) bool {
	return t.at(row, task).model > 0 && t.err(row, task) == "" && t.Docs[row].Err == nil
}

// err is the error a run recorded for a cell.
func (t *Table) err(row, task int) string {
	if e := t.errs[t.index(row, task)]; e != nil {
		return e.err
	}
	return ""
}

// setErr records a cell's error, keeping the failures on the way.
func (t *Table) setErr(row, task int, msg string) {
	i := t.index(row, task)
	if e := t.errs[i]; e != nil {
		e.err = msg
		return
	}
	t.errs[i] = &cellError{err: msg}
}

// addFailure records a failure on the way; the cell's error is then all of them.
func (t *Table) addFailure(row, task int, msg string) {
	i := t.index(row, task)
	e := t.errs[i]
	if e == nil {
		e = &cellError{}
		t.errs[i] = e
	}
	e.errs = append(e.errs, msg)
	e.err = strings.Join(e.errs, "; ")
}

// Answer reads back the answer of document row to task (indexes into Docs and
// Spec.Tasks): its text and, for a task whose answers are JSON, its value as compact
// JSON. Both are empty when the cell has no answer.
func (t *Table) Answer(row, task int) (text string, value json.RawMessage, err error) {
	if !t.ok(row, task) {
		return "", nil, nil
	}
	return t.answers.get(t.at(row, task).ans)
}

// Close releases the temporary file holding the answers; Answer and the writers cannot
// be used after it.
func (t *Table) Close() error { return t.answers.close() }

// setAnswer records a cell's answer, from the task's model with index model.
func (t *Table) setAnswer(row, task, model int, text string, value json.RawMessage) error {
	ref, err := t.answers.put(text, value)
	if err != nil {
		return err
	}
	if e := t.errs[t.index(row, task)]; e != nil {
		e.err = ""
	}
	c := t.at(row, task)
	c.model, c.ans = int16(model+1), ref
	return nil
}

// outputs are the answers of the tasks t depends on, as its templates see them: text,
// or for JSON tasks the decoded value.
func (t *Table) outputs(doc int, task *Task) (map[string]any, error) {
	if len(task.Deps) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(task.Deps))
	for j, x := range t.Spec.Tasks {
		if !contains(task.Deps, x.Name) {
			continue
		}
		text, value, err := t.Answer(doc, j)
		if err != nil {
			return nil, err
		}
		if value != nil {
			var v any
			dec := json.NewDecoder(bytes.NewReader(value))
			dec.UseNumber()
			if dec.Decode(&v) == nil {
				out[x.Name] = v
				continue
			}
		}
		out[x.Name] = text
	}
	return out, nil
}

// finish records why the run stopped early, if it did: the error of the cells it did
// not reach.
func (t *Table) finish(runErr error) { t.runErr = runErr }

// counts returns how many cells have an answer and how many an error.
func (t *Table) counts() (ok, failed, invalid int) {
	for i, d := range t.Docs {
		if d.Err != nil {
			invalid += len(t.Spec.Tasks)
			continue
		}
		for j := range t.Spec.Tasks {
			if t.ok(i, j) {
				ok++
			} else {
				failed++
			}
		}
	}
	return ok, failed, invalid
}

// Status is the row's status: StatusOK, StatusFailed or StatusInvalid.
func (t *Table) Status(row int) string {
	if t.Docs[row].Err != nil {
		return StatusInvalid
	}
	for j := range t.Spec.Tasks {
		if !t.ok(row, j) {
			return StatusFailed
		}
	}
	return StatusOK
}

// rowTotals sums a row's usage, cost and cached cells.
func (t *Table) rowTotals(row int) (tokens int64, cost float64, cached int) {
	for j := range t.Spec.Tasks {
		c := t.at(row, j)
		tokens += c.usage.Total()
		cost += c.cost
		if c.cached && t.ok(row, j) {
			cached++
		}
	}
	return tokens, cost, cached
}

// ErrorPrefix starts a CSV cell that carries an error instead of an answer.
const ErrorPrefix = "error: "

// WriteCSV writes the table as CSV: the id column, a column per task (a task with a
// JSON Schema of an object gets one column per property, "task.property"), then status,
// tokens, cost_usd and cached. A cell without an answer carries ErrorPrefix and the
// error.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := []string{t.Spec.ID}
	props := make([][]string, len(t.Spec.Tasks))
	for j, task := range t.Spec.Tasks {
		props[j] = schemaProperties(task.Schema)
		if len(props[j]) == 0 {
			header = append(header, task.Name)
		}
		for _, p := range props[j] {
			header = append(header, task.Name+"."+p)
		}
	}
	header = append(header, "status", "tokens", "cost_usd", "cached")
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, 0, len(header))
	for i, d := range t.Docs {
		rec = append(rec[:0], docID(d))
		for j := range t.Spec.Tasks {
			c := t.Cell(i, j)
			text, value, err := t.Answer(i, j)
			if err != nil {
				return err
			}
			if len(props[j]) == 0 {
				rec = append(rec, cellText(&c, text, value))
				continue
			}
			var obj map[string]json.RawMessage
			if c.OK() {
				_ = json.Unmarshal(value, &obj)
			}
			for _, p := range props[j] {
				switch {
				case !c.OK():
					rec = append(rec, ErrorPrefix+c.Err)
				case obj[p] == nil:
					rec = append(rec, "")
				default:
					rec = append(rec, jsonText(obj[p]))
				}
			}
		}
		tokens, cost, cached := t.rowTotals(i)
		rec = append(rec, t.Status(i), strconv.FormatInt(tokens, 10), strconv.FormatFloat(cost, 'f', 6, 64), strconv.Itoa(cached))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSONL writes the table as JSONL, one object per document: the id field, each
// task's answer (a string, or the JSON value for JSON tasks; {"error": "..."} without an
// answer), then status, tokens, cost_usd and cached.
func (t *Table) WriteJSONL(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	str := func(s string) []byte {
		buf.Reset()
		_ = enc.Encode(s)
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	for i, d := range t.Docs {
		line := append([]byte("{"), str(t.Spec.ID)...)
		line = append(line, ':')
		line = append(line, str(docID(d))...)
		for j, task := range t.Spec.Tasks {
			c := t.Cell(i, j)
			text, value, err := t.Answer(i, j)
			if err != nil {
				return err
			}
			line = append(line, ',')
			line = append(line, str(task.Name)...)
			line = append(line, ':')
			switch {
			case !c.OK():
				line = append(line, `{"error":`...)
				line = append(line, str(c.Err)...)
				line = append(line, '}')
			case value != nil:
				line = append(line, value...)
			default:
				line = append(line, str(text)...)
			}
		}
		tokens, cost, cached := t.rowTotals(i)
		line = fmt.Appendf(line, `,"status":%q,"tokens":%d,"cost_usd":%s,"cached":%d}`+"\n",
			t.Status(i), tokens, strconv.FormatFloat(cost, 'f', 6, 64), cached)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// docID is the row's id, or its row number when the row has none.
func docID(d *Document) string {
	if d.ID != "" {
		return d.ID
	}
	return "row " + strconv.Itoa(d.Row)
}

func cellText(c *Cell, text string, value json.RawMessage) string {
	switch {
	case !c.OK():
		return ErrorPrefix + c.Err
	case value != nil:
		return string(value)
	}
	return text
}

// jsonText is a JSON value as a CSV cell: strings unquoted, anything else as JSON.
func jsonText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// schemaProperties lists the top-level properties of an object schema, sorted; nil for
// any other schema.
func schemaProperties(schema json.RawMessage) []string {
	if schema == nil {
		return nil
	}
	var s struct {
		Type       any                        `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(schema, &s) != nil || s.Type != "object" {
		return nil
	}
	return sortedKeys(s.Properties)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
