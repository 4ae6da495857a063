package pipeline

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/sluice-llm/sluice"
)

// Row statuses in the table.
const (
	StatusOK      = "ok"      // every task answered
	StatusFailed  = "failed"  // some task has an error instead of an answer
	StatusInvalid = "invalid" // the row could not be run (a missing field, a bad line)
)

// Table is the result of a run: one row per document, one cell per task.
type Table struct {
	Spec *Spec
	Docs []*Document
	// Cells[i][j] is document i's answer to task j.
	Cells [][]Cell
}

// Cell is one document's answer to one task, or why there is none.
type Cell struct {
	// Text is the answer; Value is the answer as compact JSON for a task whose answers
	// are JSON.
	Text  string
	Value json.RawMessage
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

func newTable(p *Plan) *Table {
	t := &Table{Spec: p.Spec, Docs: p.Docs, Cells: make([][]Cell, len(p.Docs))}
	cells := make([]Cell, len(p.Docs)*len(p.Spec.Tasks))
	for i := range t.Cells {
		t.Cells[i] = cells[i*len(p.Spec.Tasks) : (i+1)*len(p.Spec.Tasks) : (i+1)*len(p.Spec.Tasks)]
	}
	return t
}

// outputs are the answers of the tasks t depends on, as its templates see them: text,
// or for JSON tasks the decoded value.
func (t *Table) outputs(doc int, task *Task) map[string]any {
	if len(task.Deps) == 0 {
		return nil
	}
	out := make(map[string]any, len(task.Deps))
	for j, x := range t.Spec.Tasks {
		if !contains(task.Deps, x.Name) {
			continue
		}
		c := &t.Cells[doc][j]
		if c.Value != nil {
			var v any
			dec := json.NewDecoder(bytes.NewReader(c.Value))
			dec.UseNumber()
			if dec.Decode(&v) == nil {
				out[x.Name] = v
				continue
			}
		}
		out[x.Name] = c.Text
	}
	return out
}

// finish gives every cell without an answer an error: the row's problem, or why the run
// did not reach it.
func (t *Table) finish(runErr error) {
	for i, d := range t.Docs {
		for j := range t.Cells[i] {
			c := &t.Cells[i][j]
			switch {
			case d.Err != nil:
				c.Err = d.Err.Error()
			case c.Model == "" && c.Err == "" && runErr != nil:
				c.Err = "not run: " + runErr.Error()
			case c.Model == "" && c.Err == "":
				c.Err = "not run"
			}
		}
	}
}

// counts returns how many cells have an answer and how many an error.
func (t *Table) counts() (ok, failed int) {
	for i := range t.Cells {
		for j := range t.Cells[i] {
			if t.Cells[i][j].OK() {
				ok++
			} else {
				failed++
			}
		}
	}
	return ok, failed
}

// Status is the row's status: StatusOK, StatusFailed or StatusInvalid.
func (t *Table) Status(row int) string {
	if t.Docs[row].Err != nil {
		return StatusInvalid
	}
	for j := range t.Cells[row] {
		if !t.Cells[row][j].OK() {
			return StatusFailed
		}
	}
	return StatusOK
}

// rowTotals sums a row's usage, cost and cached cells.
func (t *Table) rowTotals(row int) (tokens int64, cost float64, cached int) {
	for j := range t.Cells[row] {
		c := &t.Cells[row][j]
		tokens += c.Usage.Total()
		cost += c.CostUSD
		if c.Cached && c.OK() {
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
			c := &t.Cells[i][j]
			if len(props[j]) == 0 {
				rec = append(rec, cellText(c))
				continue
			}
			var obj map[string]json.RawMessage
			if c.OK() {
				_ = json.Unmarshal(c.Value, &obj)
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
			c := &t.Cells[i][j]
			line = append(line, ',')
			line = append(line, str(task.Name)...)
			line = append(line, ':')
			switch {
			case !c.OK():
				line = append(line, `{"error":`...)
				line = append(line, str(c.Err)...)
				line = append(line, '}')
			case c.Value != nil:
				line = append(line, c.Value...)
			default:
				line = append(line, str(c.Text)...)
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

func cellText(c *Cell) string {
	switch {
	case !c.OK():
		return ErrorPrefix + c.Err
	case c.Value != nil:
		return string(c.Value)
	}
	return c.Text
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
