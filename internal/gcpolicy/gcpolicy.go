// Package gcpolicy is the garbage collector's policy for a sluice run: a higher GOGC under
// a soft memory limit, which spends less CPU on collection at a bounded cost in memory.
//
// At zero latency, with the default GOGC=100, the collector's marking and the allocation
// assists took about 6% of sluice run's CPU (`sluice bench wire --cpuprofile`). With
// Percent and Limit the heap grows to five times what is live between collections, but
// the runtime's memory stays near Limit: past it the collector runs as often as needed
// (at most half the CPU, the runtime's cap), so a run whose live heap nears Limit (long
// lines, a large MaxBytesInFlight) collects more often than with the default, never less.
//
// The policy is what `sluice run` applies unless GOGC or GOMEMLIMIT is set in its
// environment, which then decide as usual.
package gcpolicy

import "runtime/debug"

const (
	// Percent is the GOGC of a run: a collection when the heap has grown by four times
	// what the last one left live.
	Percent = 400
	// Limit is the GOMEMLIMIT of a run: a soft cap on the Go runtime's memory (the heap,
	// stacks and the runtime's own), not on the process's RSS, which adds the binary,
	// and SQLite's page cache.
	Limit = 64 << 20
)

// Apply sets the collector to Percent and Limit and returns a function that restores
// the settings it replaced.
func Apply() (restore func()) {
	percent := debug.SetGCPercent(Percent)
	limit := debug.SetMemoryLimit(Limit)
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// Chosen reports whether the user chose the collector's settings, given the values of
// the GOGC and GOMEMLIMIT environment variables: Apply should then not be called.
func Chosen(gogc, gomemlimit string) bool {
	return gogc != "" || gomemlimit != ""
}
