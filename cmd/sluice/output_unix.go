//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

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
