package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

// answers keeps a table's answers in a temporary file, so that a run's memory does not
// grow with them: a cell holds only where its answer is (an answerRef). Safe for
// concurrent use.
type answers struct {
	mu      sync.Mutex
	f       *os.File
	name    string // removed on close, when it could not be removed at once
	w       *bufio.Writer
	size    int64 // bytes written, buffered or not
	flushed int64 // bytes in the file
}

// answerRef is where a cell's answer is in the answers file: its text, then its JSON
// value (valueLen -1 when it has none).
type answerRef struct {
	off               int64
	textLen, valueLen int32
}

func newAnswers(dir string) (*answers, error) {
	f, err := os.CreateTemp(dir, "sluice-pipeline-answers-*")
	if err != nil {
		return nil, fmt.Errorf("answers file: %w", err)
	}
	a := &answers{f: f, w: bufio.NewWriterSize(f, 256<<10)}
	// A removed file lives on until it is closed, where the system allows removing an
	// open file; elsewhere close removes it.
	if os.Remove(f.Name()) != nil {
		a.name = f.Name()
	}
	return a, nil
}

// put appends an answer and returns where it is.
func (a *answers) put(text string, value json.RawMessage) (answerRef, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ref := answerRef{off: a.size, textLen: int32(len(text)), valueLen: -1}
	if value != nil {
		ref.valueLen = int32(len(value))
	}
	if _, err := a.w.WriteString(text); err != nil {
		return answerRef{}, fmt.Errorf("write answers file: %w", err)
	}
	if _, err := a.w.Write(value); err != nil {
		return answerRef{}, fmt.Errorf("write answers file: %w", err)
	}
	a.size += int64(len(text) + len(value))
	return ref, nil
}

// get reads an answer back.
func (a *answers) get(ref answerRef) (text string, value json.RawMessage, err error) {
	n := int64(ref.textLen) + max(int64(ref.valueLen), 0)
	a.mu.Lock()
	if ref.off+n > a.flushed {
		if err := a.w.Flush(); err != nil {
			a.mu.Unlock()
			return "", nil, fmt.Errorf("write answers file: %w", err)
		}
		a.flushed = a.size
	}
	a.mu.Unlock()
	buf := make([]byte, n)
	if _, err := a.f.ReadAt(buf, ref.off); err != nil {
		return "", nil, fmt.Errorf("read answers file: %w", err)
	}
	text = string(buf[:ref.textLen])
	if ref.valueLen >= 0 {
		value = json.RawMessage(buf[ref.textLen:])
	}
	return text, value, nil
}

func (a *answers) close() error {
	err := a.f.Close()
	if a.name != "" {
		if e := os.Remove(a.name); err == nil {
			err = e
		}
	}
	return err
}
