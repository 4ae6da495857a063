package main

import (
	"os"
	"path/filepath"
	"strings"
)

// atomicFile is written under a temporary name and renamed into place on commit. The
// temporary file is locked while this process writes it, so that a later process can
// tell a file a killed run left behind (removed by createAtomic) from one being written.
type atomicFile struct {
	f    *os.File
	path string
	done bool
}

// tempPattern is the name of path's temporary files, for os.CreateTemp.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".*.tmp" }

func createAtomic(path string) (*atomicFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	removeLeftovers(path)
	f, err := os.CreateTemp(filepath.Dir(path), tempPattern(path))
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &atomicFile{f: f, path: path}, nil
}

// removeLeftovers removes the temporary files of path that killed processes left: those
// no live process holds locked. It is best effort: a file it cannot check stays.
func removeLeftovers(path string) {
	pattern := strings.ReplaceAll(tempPattern(path), "*", "[0-9]*")
	names, err := filepath.Glob(filepath.Join(filepath.Dir(path), pattern))
	if err != nil {
		return
	}
	for _, name := range names {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if orphanedFile(f) {
			os.Remove(name)
		}
		f.Close()
	}
}

func (a *atomicFile) commit() error {
	if err := a.f.Sync(); err != nil {
		return err
	}
	if err := os.Chmod(a.f.Name(), 0o644); err != nil {
		return err
	}
	// Renamed while still locked and open: no other process can take it for a leftover.
	if err := os.Rename(a.f.Name(), a.path); err != nil {
		return err
	}
	a.done = true
	return a.f.Close()
}

func (a *atomicFile) abort() {
	if !a.done {
		os.Remove(a.f.Name())
		a.f.Close()
	}
}
