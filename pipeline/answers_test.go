package pipeline

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestAnswersFile checks that answers read back as written, before and after they reach
// the file, and that closing leaves no file behind.
func TestAnswersFile(t *testing.T) {
	dir := t.TempDir()
	a, err := newAnswers(dir)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		text  string
		value json.RawMessage
	}
	entries := []entry{
		{"plain", nil},
		{"", nil},
		{`{"people":["Ada"]}`, json.RawMessage(`{"people":["Ada"]}`)},
		{"Zürich 東京 🚀", json.RawMessage(`""`)},
		{strings.Repeat("long ", 200000), nil}, // past the write buffer
	}
	refs := make([]answerRef, len(entries))
	for i, e := range entries {
		if refs[i], err = a.put(e.text, e.value); err != nil {
			t.Fatal(err)
		}
		if text, value, err := a.get(refs[i]); err != nil || text != e.text || string(value) != string(e.value) || (value == nil) != (e.value == nil) {
			t.Fatalf("entry %d read back at once: %.40q %q %v", i, text, value, err)
		}
	}
	for i, e := range entries {
		if text, value, err := a.get(refs[i]); err != nil || text != e.text || string(value) != string(e.value) || (value == nil) != (e.value == nil) {
			t.Errorf("entry %d read back later: %.40q %q %v", i, text, value, err)
		}
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
