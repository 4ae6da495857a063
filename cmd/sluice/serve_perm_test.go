//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/sqlite"
)

// TestServeWarnsOfReadableStore: serve says at start that other users may read an
// existing store, and keeps a new one private (files dir included).
func TestServeWarnsOfReadableStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "private")
	store := filepath.Join(dir, "s.db")
	s := startServe(t, "sk-one", "--store", store)
	if strings.Contains(s.log.String(), "other users may read") {
		t.Errorf("a new store is said to be readable: %s", s.log.String())
	}
	for p, want := range map[string]os.FileMode{store: 0o600, dir: 0o700, store + ".files": 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}

	old := filepath.Join(t.TempDir(), "old.db")
	st, err := sqlite.Open(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Chmod(old, 0o644); err != nil {
		t.Fatal(err)
	}
	s = startServe(t, "sk-one", "--store", old)
	if got := s.log.String(); !strings.Contains(got, "level=WARN msg=\"other users may read the store") || !strings.Contains(got, old+" (-rw-r--r--)") {
		t.Errorf("no warning for a store others may read: %s", got)
	}
}
