//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// lockJob takes an exclusive lock on a job, so that one process at a time runs it from a
// shared SQLite store and may take over the leases a crashed run left behind. The lock
// is released when the process ends, however it ends.
func lockJob(path string) (unlock func(), err error) {
	f, err := openLocked(path)
	if err != nil {
		return nil, err
	}
	return func() { unlockFile(f) }, nil
}

// openLocked opens path and takes an exclusive lock on it (lockFile), or returns
// errJobLocked when a live process holds it.
func openLocked(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errJobLocked
		}
		return nil, err
	}
	return f, nil
}

// unlockFile releases the lock of openLocked and closes f.
func unlockFile(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}
