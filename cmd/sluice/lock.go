package main

import "errors"

var (
	errJobLocked = errors.New("another sluice process is running this job")
	// errNoLocks is openLocked's error where flock is not available.
	errNoLocks = errors.New("no file locks on this system")
)
