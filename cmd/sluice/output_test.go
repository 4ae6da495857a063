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
	// A leftover of renameio's naming, and one of sluice versions before it.
	dead := filepath.Join(dir, ".out.jsonl8731250912")
	old := filepath.Join(dir, ".out.jsonl.123456.tmp")
	for _, name := range []string{dead, old} {
		if err := os.WriteFile(name, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	live, err := os.Create(filepath.Join(dir, ".out.jsonl4242"))
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
	for _, name := range []string{dead, old} {
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Errorf("the leftover %s is still there (%v)", name, err)
		}
	}
	if _, err := os.Stat(live.Name()); err != nil {
		t.Errorf("the file being written was removed: %v", err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "{}\n" {
		t.Errorf("output %q, %v", b, err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("output mode %v (%v), want 0644", fi.Mode().Perm(), err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, ".out.jsonl*"))
	if len(names) != 1 || names[0] != live.Name() {
		t.Errorf("temporary files left: %v, want only the live one", names)
	}
}

// TestAtomicAbort: an aborted output leaves neither the file nor its temporary file, and
// keeps what was there.
func TestAtomicAbort(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	if err := os.WriteFile(out, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := createAtomic(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.f.WriteString("new\n"); err != nil {
		t.Fatal(err)
	}
	a.abort()
	if b, err := os.ReadFile(out); err != nil || string(b) != "old\n" {
		t.Errorf("output %q, %v; want the old content", b, err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".out.jsonl*")); len(names) != 0 {
		t.Errorf("temporary files left: %v", names)
	}
}
