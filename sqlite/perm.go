package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The store holds every prompt and answer: only its owner may read it, whatever the
// umask.
const (
	// FileMode is the mode of a new store and of its -wal and -shm files (SQLite gives
	// them the mode of the database file).
	FileMode fs.FileMode = 0o600
	// DirMode is the mode of a directory Open creates for a store.
	DirMode fs.FileMode = 0o700
)

// create makes the directory of the store at abs (mode DirMode) and the store's empty
// file (mode FileMode) when they are missing. The modes are set explicitly, so that the
// umask does not change them. An existing file or directory is left as it is: see
// Exposed.
func create(abs string) error {
	dir := filepath.Dir(abs)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, DirMode); err != nil {
			return err
		}
		if err := os.Chmod(dir, DirMode); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(abs, os.O_CREATE|os.O_EXCL|os.O_WRONLY, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Exposed returns the store at path, its -wal and -shm files and its directory when other
// users than the owner may read or write them (any group or other permission bit), each
// with its mode: "/var/lib/sluice/serve.db (-rw-r--r--)". Missing files are skipped.
func Exposed(path string) ([]string, error) {
	var out []string
	for _, p := range []string{path, path + "-wal", path + "-shm", filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("check store permissions: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			out = append(out, fmt.Sprintf("%s (%s)", p, fi.Mode().Perm()))
		}
	}
	return out, nil
}
