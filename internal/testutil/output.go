package testutil

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// OutputLine is one line of an output or error file (the Batch API output format),
// decoded. CustomID is nil when the line's custom_id is null (an input line that had
// none).
type OutputLine struct {
	ID       string  `json:"id"`
	CustomID *string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Custom is the line's custom_id, "" when it is null.
func (l *OutputLine) Custom() string {
	if l.CustomID == nil {
		return ""
	}
	return *l.CustomID
}

// DecodeOutput decodes the lines of an output file's content; a line that is not JSON
// ends the test.
func DecodeOutput(t testing.TB, data []byte) []OutputLine {
	t.Helper()
	var lines []OutputLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l OutputLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %d: %v: %s", len(lines)+1, err, sc.Bytes())
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// ReadOutput reads and decodes the output file at path.
func ReadOutput(t testing.TB, path string) []OutputLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return DecodeOutput(t, data)
}
