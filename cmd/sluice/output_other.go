//go:build !unix

package main

import (
	"os"
	"path/filepath"
)

// pendingFile does where renameio has no PendingFile (Windows) what renameio does
// elsewhere: the file is written under a temporary name beside its path (".NAME" and
// random digits, as renameio names it), synced, and renamed over path.
type pendingFile struct {
	*os.File
	path    string
	renamed bool
}

// newPendingFile creates path's temporary file in dir.
func newPendingFile(path, dir string) (*pendingFile, error) {
	f, err := os.CreateTemp(dir, "."+filepath.Base(path))
	if err != nil {
		return nil, err
	}
	return &pendingFile{File: f, path: path}, nil
}

// CloseAtomicallyReplace syncs and closes the file, and renames it over its path.
func (p *pendingFile) CloseAtomicallyReplace() error {
	if err := p.Sync(); err != nil {
		return err
	}
	if err := p.Close(); err != nil {
		return err
	}
	if err := os.Rename(p.Name(), p.path); err != nil {
		return err
	}
	p.renamed = true
	return nil
}

// Cleanup closes and removes the file, unless it was renamed into place.
func (p *pendingFile) Cleanup() error {
	if p.renamed {
		return nil
	}
	_ = p.Close()
	return os.Remove(p.Name())
}

// lockTemp holds no lock where flock is not available, and keeps no second handle open:
// on Windows it would make the rename fail. A nil *os.File's Close does nothing.
func lockTemp(string) (*os.File, error) { return nil, nil }

// lockFile is a no-op where flock is not available.
func lockFile(*os.File) error { return nil }

// orphanedFile cannot tell a leftover from a file being written without flock: it keeps
// every file.
func orphanedFile(*os.File) bool { return false }

// syncDir does nothing where a directory cannot be opened to be synced (Windows).
func syncDir(string) error { return nil }
