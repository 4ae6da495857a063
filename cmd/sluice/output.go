package main

import (
	"os"
	"path/filepath"
)

// atomicFile is written under a temporary name beside its path and renamed into place on
// commit (a pendingFile: github.com/google/renameio where it works; the data is synced
// before the rename). The
// temporary file is locked while this process writes it, so that a later process can
// tell a file a killed run left behind (removed by createAtomic) from one being written.
type atomicFile struct {
	f *pendingFile
	// lock is a second open of the temporary file that holds its lock: renameio closes f
	// before it renames it, and the lock must outlive the rename, or another process
	// could take the file for a leftover in between.
	lock *os.File
	path string
}

// tempPatterns match path's temporary files: renameio's (".NAME" and random digits), and
// those of sluice versions before it (".NAME.DIGITS.tmp").
func tempPatterns(path string) []string {
	base := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	return []string{base + "[0-9]*", base + ".[0-9]*.tmp"}
}

func createAtomic(path string) (*atomicFile, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	removeLeftovers(path)
	// The temporary file stays beside path, never in a TMPDIR that may be in memory.
	f, err := newPendingFile(path, dir)
	if err != nil {
		return nil, err
	}
	lock, err := lockTemp(f.Name())
	if err != nil {
		_ = f.Cleanup()
		return nil, err
	}
	return &atomicFile{f: f, lock: lock, path: path}, nil
}

// removeLeftovers removes the temporary files of path that killed processes left: those
// no live process holds locked. It is best effort: a file it cannot check stays.
func removeLeftovers(path string) {
	for _, pattern := range tempPatterns(path) {
		names, err := filepath.Glob(pattern)
		if err != nil {
			continue
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
}

// commit syncs the file, renames it into place (still locked: no other process can take
// it for a leftover) and syncs the directory, so that the rename survives a crash.
func (a *atomicFile) commit() error {
	defer a.lock.Close()
	if err := a.f.Chmod(0o644); err != nil {
		return err
	}
	if err := a.f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(a.path))
}

// abort removes the temporary file, unless commit renamed it.
func (a *atomicFile) abort() {
	_ = a.f.Cleanup() // a no-op after a commit
	a.lock.Close()
}
