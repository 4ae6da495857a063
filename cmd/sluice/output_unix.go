//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/google/renameio/v2"
)

// pendingFile is renameio's: written beside its path, synced, and renamed into place by
// CloseAtomicallyReplace; Cleanup removes it unless it was.
type pendingFile = renameio.PendingFile

// newPendingFile creates path's temporary file in dir.
func newPendingFile(path, dir string) (*pendingFile, error) {
	return renameio.NewPendingFile(path, renameio.WithTempDir(dir))
}

// lockTemp opens the temporary file name a second time and locks it: the lock outlives
// the rename (see atomicFile).
func lockTemp(name string) (*os.File, error) {
	lock, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, err
	}
	return lock, nil
}

// lockFile takes an exclusive lock on f, held until f is closed or the process ends.
func lockFile(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}

// orphanedFile reports whether no process holds f locked: the process that wrote it is
// gone. It leaves f locked when so.
func orphanedFile(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

// syncDir makes a rename in dir durable across a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
