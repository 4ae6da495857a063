//go:build !unix

package main

import "os"

// lockJob is a no-op where flock is not available: do not run one job from two
// processes at once there.
func lockJob(string) (func(), error) { return func() {}, nil }

// openLocked is not available without flock.
func openLocked(string) (*os.File, error) { return nil, errNoLocks }

func unlockFile(f *os.File) { f.Close() }
