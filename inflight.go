package sluice

import (
	"context"
)

// Bytes in flight.
//
// An attempt holds its request's body from the moment it is sent until its result is
// handled, and the upstream client and a local upstream (the simulator, a gateway in the
// same process) each hold a copy of it meanwhile. With long lines (a prompt of megabytes)
// concurrency × line size is what a process's memory grows with, so the Engine caps the
// request bytes in flight (Config.MaxBytesInFlight) as well as their number. A request
// counts its body's length, capped at the limit so that a single body larger than the cap
// still goes, alone.

// bodyWeight is what a request counts against the Engine's bytes in flight.
func (e *Engine) bodyWeight(it *Item) int64 {
	return min(int64(len(it.Request.Body)), e.cfg.MaxBytesInFlight)
}

// acquireBytes takes weight bytes of the Engine's bytes in flight for r, handling r's
// results while it waits (they free bytes, and r's own attempts may hold them). It
// returns errStopped or ctx's error, holding nothing, when the run is stopped first.
func (r *Run) acquireBytes(ctx context.Context, weight int64) error {
	if r.e.bytes.TryAcquire(weight) {
		return nil
	}
	// Wait in the semaphore's FIFO queue, so that a long line is not passed over by short
	// ones forever, from a goroutine that this function always joins.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- r.e.bytes.Acquire(actx, weight) }()
	for {
		select {
		case err := <-got:
			if err != nil { // ctx is done: the semaphore gave nothing
				return ctx.Err()
			}
			return nil
		case res := <-r.finished:
			r.handle(res)
		case <-r.stopped:
			cancel()
			if err := <-got; err == nil {
				r.e.bytes.Release(weight) // acquired just as the run stopped
			}
			return errStopped
		case <-ctx.Done():
			cancel()
			if err := <-got; err == nil {
				r.e.bytes.Release(weight)
			}
			return ctx.Err()
		}
	}
}

// claimSize is how many requests r claims at once: enough to keep the concurrency busy,
// but no more body bytes than a quarter of the cap on bytes in flight, judged by the
// bodies of its last claim (a run's first claim is small, so that a file of long lines
// never has many claimed at once).
func (r *Run) claimSize() int {
	n := min(maxClaim, max(16, r.e.cfg.Concurrency))
	if r.claimAvg == 0 {
		return min(n, firstClaim)
	}
	return max(1, min(n, int(r.e.cfg.MaxBytesInFlight/4/r.claimAvg)))
}

// noteClaim records the body sizes of a claim for the next claimSize.
func (r *Run) noteClaim(items []Item) {
	if len(items) == 0 {
		return
	}
	var sum int64
	for i := range items {
		sum += int64(len(items[i].Request.Body))
	}
	r.claimAvg = max(1, sum/int64(len(items)))
}
