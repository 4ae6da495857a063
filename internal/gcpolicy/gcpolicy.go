// Package gcpolicy is the garbage collector's policy for a sluice run: a higher GOGC under
// a soft memory limit, which spends less CPU on collection at a bounded cost in memory.
//
// At zero latency, with the default GOGC=100, the collector's marking and the allocation
// assists took about 6% of sluice run's CPU (`sluice bench wire --cpuprofile`). With
// Percent the heap grows to five times what is live between collections; the soft memory
// limit keeps the runtime's memory near Limit while that is enough. The limit follows the
// live heap: after each collection it is raised to twice what stayed live plus Headroom
// when that is more than Limit, so that a run whose live heap outgrows Limit (long lines,
// a large MaxBytesInFlight) collects as often as with the default GOGC=100, never more:
// a fixed limit under the live heap would have the collector run all the time (up to half
// the CPU, the runtime's cap).
//
// The policy is what `sluice run` applies unless GOGC or GOMEMLIMIT is set in its
// environment, which then decide as usual.
package gcpolicy

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

const (
	// Percent is the GOGC of a run: a collection when the heap has grown by four times
	// what the last one left live.
	Percent = 400
	// Limit is the lowest GOMEMLIMIT of a run: a soft cap on the Go runtime's memory (the
	// heap, stacks and the runtime's own), not on the process's RSS, which adds the binary,
	// and SQLite's page cache.
	Limit = 64 << 20
	// Headroom is what the limit leaves above twice the live heap, for the runtime's
	// memory that is not heap (stacks, metadata).
	Headroom = 16 << 20
)

// LimitFor is the soft memory limit for a live heap of live bytes: Limit, or twice live
// plus Headroom when that is more.
func LimitFor(live uint64) int64 {
	if live > math.MaxInt64/4 {
		return math.MaxInt64
	}
	return max(Limit, 2*int64(live)+Headroom)
}

// samples is the runtime metric read: the heap the last collection left live.
func samples() []metrics.Sample { return []metrics.Sample{{Name: "/gc/heap/live:bytes"}} }

// Apply sets the collector to Percent and Limit, the limit following the live heap after
// each collection (LimitFor), and returns a function that restores the settings it
// replaced and stops following.
func Apply() (restore func()) {
	percent := debug.SetGCPercent(Percent)
	limit := debug.SetMemoryLimit(Limit)
	p := &policy{sample: samples()}
	p.arm()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.stopped = true
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// policy follows the live heap: a sentinel object, unreachable as soon as it is made, has
// a finalizer that runs after the collection that finds it, adjusts the limit and makes
// the next sentinel. It needs no goroutine of its own.
type policy struct {
	mu      sync.Mutex // an adjustment against the restore
	stopped bool
	sample  []metrics.Sample
	// adjusted, when not nil, is called after each adjustment (tests).
	adjusted func(limit int64)
}

type sentinel struct{ p *policy }

func (p *policy) arm() {
	runtime.SetFinalizer(&sentinel{p}, func(s *sentinel) { s.p.adjust() })
}

func (p *policy) adjust() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	metrics.Read(p.sample)
	if p.sample[0].Value.Kind() == metrics.KindUint64 {
		limit := LimitFor(p.sample[0].Value.Uint64())
		debug.SetMemoryLimit(limit)
		if p.adjusted != nil {
			p.adjusted(limit)
		}
	}
	p.arm()
}

// Chosen reports whether the user chose the collector's settings, given the values of
// the GOGC and GOMEMLIMIT environment variables: Apply should then not be called.
func Chosen(gogc, gomemlimit string) bool {
	return gogc != "" || gomemlimit != ""
}
