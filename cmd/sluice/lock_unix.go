//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockJob takes an exclusive lock on a job, so that one process at a time runs it from a
// shared SQLite store and may take over the leases a crashed run left behind. The lock
// is released when the process ends, however it ends.
func lockJob(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errJobLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
