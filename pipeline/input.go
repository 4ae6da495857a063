package pipeline

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLine is the longest JSONL document line read.
const MaxLine = 64 << 20

// Document is one row of the input: a CSV row under its header, or a JSONL object.
type Document struct {
	// Row is the document's 1-based position in the input; Line is the file line it
	// starts on.
	Row, Line int
	// ID is the value of the spec's id field.
	ID string
	// Fields are the document's fields: strings from a CSV, JSON values from JSONL. They
	// are nil for a document ReadFile read without a problem: its fields are read again
	// from the file when needed, so that memory does not grow with the documents.
	Fields map[string]any
	// Err, when set, says why the row cannot be run.
	Err *RowError

	src       *docFile // the file to read Fields again from
	off, size int64    // where the document is in it
}

// fields returns the document's fields, reading them again from its file if need be.
func (d *Document) fields() (map[string]any, error) {
	if d.Fields != nil || d.src == nil {
		return d.Fields, nil
	}
	return d.src.fields(d)
}

// RowError is a problem with one document, naming its row and the field at fault.
type RowError struct {
	Row   int
	ID    string // "" when unknown
	Field string // "" for the row as a whole
	Msg   string
}

func (e *RowError) Error() string {
	var b strings.Builder
	b.WriteString("row " + strconv.Itoa(e.Row))
	if e.ID != "" {
		b.WriteString(" (id " + strconv.Quote(e.ID) + ")")
	}
	if e.Field != "" {
		b.WriteString(": field " + strconv.Quote(e.Field))
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// ReadFile reads the documents of a .csv or .jsonl file. Rows with problems come back
// with Err set; an error means the file itself could not be read. Only an index of the
// documents is kept (row, id, where each is in the file): their fields are read again
// when a plan or a run needs them, and the file must not change meanwhile. Plan.Close
// closes it.
func ReadFile(path, idField string) ([]*Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read documents: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read documents: %w", err)
	}
	src := &docFile{path: path, format: inputFormat(path), size: fi.Size(), idField: idField}
	switch src.format {
	case "csv":
		return readCSV(f, idField, src)
	case "jsonl":
		return readJSONL(f, idField, src)
	}
	return nil, fmt.Errorf("read documents %s: want a .csv or .jsonl file", path)
}

// index drops a document's fields when they can be read again from src.
func index(d *Document, src *docFile, off, end int64) {
	if src == nil || d.Err != nil {
		return
	}
	// The id is a slice of the whole record: keep only the id.
	d.ID = strings.Clone(d.ID)
	d.Fields, d.src, d.off, d.size = nil, src, off, end-off
}

// ReadCSV reads documents from a CSV file with a header row. A row shorter than the
// header lacks the fields of its missing cells; a longer one is an error.
func ReadCSV(r io.Reader, idField string) ([]*Document, error) {
	return readCSV(r, idField, nil)
}

func readCSV(r io.Reader, idField string, src *docFile) ([]*Document, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("read documents: the CSV file is empty (it needs a header row)")
	}
	if err != nil {
		return nil, fmt.Errorf("read documents: header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a UTF-8 byte order mark
	}
	seen := map[string]int{}
	for i, h := range header {
		if h == "" {
			return nil, fmt.Errorf("read documents: header: column %d has no name", i+1)
		}
		if j, dup := seen[h]; dup {
			return nil, fmt.Errorf("read documents: header: columns %d and %d are both %q", j+1, i+1, h)
		}
		seen[h] = i
	}
	if _, ok := seen[idField]; !ok {
		return nil, fmt.Errorf("read documents: header: no column %q (the id field); columns: %s", idField, strings.Join(header, ", "))
	}
	if src != nil {
		src.header = header
	}
	var docs []*Document
	ids := map[string]int{}
	for row := 1; ; row++ {
		off := cr.InputOffset()
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		d := &Document{Row: row, Line: line}
		var pe *csv.ParseError
		if err != nil && errors.As(err, &pe) && !errors.Is(pe.Err, csv.ErrFieldCount) {
			d.Line = pe.StartLine
			d.Err = &RowError{Row: row, Msg: "not valid CSV: " + pe.Err.Error()}
			docs = append(docs, d)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read documents: row %d: %w", row, err)
		}
		d.Fields = make(map[string]any, len(rec))
		for i, v := range rec {
			if i >= len(header) {
				d.Err = &RowError{Row: row, Msg: fmt.Sprintf("%d cells, but the header has %d columns", len(rec), len(header))}
				break
			}
			d.Fields[header[i]] = v
		}
		finishDoc(d, idField, ids)
		index(d, src, off, cr.InputOffset())
		docs = append(docs, d)
	}
	return docs, nil
}

// ReadJSONL reads documents from a JSONL file: one JSON object per line. Blank lines
// are skipped.
func ReadJSONL(r io.Reader, idField string) ([]*Document, error) {
	return readJSONL(r, idField, nil)
}

func readJSONL(r io.Reader, idField string, src *docFile) ([]*Document, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var docs []*Document
	ids := map[string]int{}
	row := 0
	var off int64
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		var long []byte
		for errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, b...)
			if len(long) > MaxLine {
				return nil, fmt.Errorf("read documents: line %d: longer than %d bytes", line, MaxLine)
			}
			b, err = br.ReadSlice('\n')
		}
		if long != nil {
			b = append(long, b...)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read documents: line %d: %w", line, err)
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			row++
			d := &Document{Row: row, Line: line}
			if !utf8.Valid(t) {
				d.Err = &RowError{Row: row, Msg: "not valid UTF-8"}
			} else if e := decodeObject(t, &d.Fields); e != nil {
				d.Err = &RowError{Row: row, Msg: "not a JSON object: " + e.Error()}
			} else {
				finishDoc(d, idField, ids)
				index(d, src, off, off+int64(len(b)))
			}
			docs = append(docs, d)
		}
		off += int64(len(b))
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
	}
}

// finishDoc sets the document's id and checks it is present and unique.
func finishDoc(d *Document, idField string, ids map[string]int) {
	v, ok := d.Fields[idField]
	if ok {
		d.ID = scalarString(v)
	}
	switch {
	case d.Err != nil:
		d.Err.ID = d.ID
	case !ok || v == nil || d.ID == "":
		d.Err = &RowError{Row: d.Row, Field: idField, Msg: "missing (it is the id field)"}
	default:
		if first, dup := ids[d.ID]; dup {
			d.Err = &RowError{Row: d.Row, ID: d.ID, Field: idField, Msg: fmt.Sprintf("duplicate id: row %d has it too", first)}
			return
		}
		ids[d.ID] = d.Row
	}
}

// scalarString is a field's value as text: strings as they are, other JSON values as
// JSON.
func scalarString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	case json.Number:
		return v.String()
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// decodeObject decodes one JSON object, keeping numbers as written.
func decodeObject(data []byte, m *map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(m); err != nil {
		return err
	}
	if *m == nil {
		return errors.New("null")
	}
	if dec.More() {
		return errors.New("more than one value on the line")
	}
	return nil
}
