//go:build unix

package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
)

// TestOpenCreatesPrivateFiles: a new store, its WAL and shared-memory files are 0600 and
// its directory 0700, whatever the umask.
func TestOpenCreatesPrivateFiles(t *testing.T) {
	for _, umask := range []int{0, 0o022} {
		old := syscall.Umask(umask)
		path := filepath.Join(t.TempDir(), "new", "dir", "s.db")
		st, err := sqlite.Open(context.Background(), path)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateJob(context.Background(), &sluice.Job{ID: "j", Input: "in.jsonl"}); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]os.FileMode{path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600, filepath.Dir(path): 0o700} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("umask %03o: %s is %v, want %v", umask, filepath.Base(p), got, want)
			}
		}
		if exposed, err := sqlite.Exposed(path); err != nil || len(exposed) != 0 {
			t.Errorf("Exposed(a new store) = %v, %v", exposed, err)
		}
		st.Close()
	}
}

// TestExposedNamesReadableFiles: Exposed names the files and directory others may read,
// and leaves them as they are.
func TestExposedNamesReadableFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exposed, err := sqlite.Exposed(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(exposed, "\n"); len(exposed) != 2 || !strings.Contains(got, path+" (-rw-r--r--)") || !strings.Contains(got, dir+" (-rwxr-xr-x)") {
		t.Errorf("Exposed = %q", exposed)
	}
	// Opening it again keeps the operator's modes.
	st, err = sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("reopening changed the mode to %v", fi.Mode().Perm())
	}
}
