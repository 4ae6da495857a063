//go:build race

package main

// raceEnabled: the race detector reports a race inside net/http between the counting
// simulator's handlers and the test goroutine in TestCrashAndResume (no frame of sluice's
// in it); under -race that test runs its simulator in the killed process instead.
const raceEnabled = true
