package pipeline

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"sync"
)

// docFile is the file documents read by ReadFile come from. Their fields are not kept:
// a document is read again, by its offset, when its fields are needed, so that memory
// does not grow with the documents. Safe for concurrent use.
type docFile struct {
	path    string
	format  string   // "csv" or "jsonl"
	header  []string // of a CSV file
	size    int64    // when the documents were read
	idField string

	mu  sync.Mutex
	f   *os.File
	err error
}

// open returns the file, opened on first use and checked to be the size it was when
// the documents were read.
func (s *docFile) open() (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil || s.err != nil {
		return s.f, s.err
	}
	f, err := os.Open(s.path)
	if err != nil {
		s.err = fmt.Errorf("read documents again: %w", err)
		return nil, s.err
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != s.size {
		f.Close()
		s.err = fmt.Errorf("read documents again: %s changed since it was read", s.path)
		return nil, s.err
	}
	s.f = f
	return f, nil
}

func (s *docFile) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f, s.err = nil, fmt.Errorf("read documents again: %s is closed", s.path)
	return err
}

// fields reads a document's fields again.
func (s *docFile) fields(d *Document) (map[string]any, error) {
	f, err := s.open()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, d.size)
	if _, err := f.ReadAt(buf, d.off); err != nil && (err != io.EOF || len(buf) == 0) {
		return nil, fmt.Errorf("read documents again: %w", err)
	}
	var fields map[string]any
	switch s.format {
	case "csv":
		rec, err := csv.NewReader(bytes.NewReader(buf)).Read()
		if err != nil {
			return nil, fmt.Errorf("read documents again: %w", err)
		}
		fields = make(map[string]any, len(rec))
		for i, v := range rec {
			fields[s.header[i]] = v
		}
	default:
		if err := decodeObject(bytes.TrimSpace(buf), &fields); err != nil {
			return nil, fmt.Errorf("read documents again: %w", err)
		}
	}
	if id := scalarString(fields[s.idField]); id != d.ID {
		return nil, fmt.Errorf("read documents again: id %q, not %q: %s changed since it was read", id, d.ID, s.path)
	}
	return fields, nil
}
