//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLeftoverTempOutputRemoved: a temporary output file a killed run left is removed
// when the output is written next; one a live process is writing (locked) is kept.
func TestLeftoverTempOutputRemoved(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	dead := filepath.Join(dir, ".out.jsonl.123456.tmp")
	if err := os.WriteFile(dead, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	live, err := os.CreateTemp(dir, tempPattern(out))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := lockFile(live); err != nil {
		t.Fatal(err)
	}
	// Another process's lock: flock locks belong to the open file, so a second open
	// of the same file in this process is as good as another process.
	a, err := createAtomic(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.f.WriteString("{}\n"); err != nil {
		t.Fatal(err)
	}
	if err := a.commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the leftover %s is still there (%v)", dead, err)
	}
	if _, err := os.Stat(live.Name()); err != nil {
		t.Errorf("the file being written was removed: %v", err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "{}\n" {
		t.Errorf("output %q, %v", b, err)
	}
}
