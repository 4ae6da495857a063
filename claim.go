package sluice

import "context"

// Claims ahead.
//
// Claims are batched: claiming only what can be sent at once (so that a crash leaves no
// unsent claims) cost 10% of the Little's-law throughput. A claim made only once the
// last one's requests were all sent stalled the dispatcher for the claim's round trip to
// the ledger (15–18% of a run at zero latency), with slots free and senders idle. So once
// a claim's requests are running low, the next claim is made by a goroutine while the
// dispatcher sends the rest.
//
// The crash promise stands: a claim ahead asks for no more than a claim's size less the
// requests still claimed and not sent, so that the requests a run holds unsent are at
// most one claim, as when claims were made only once the last was used up. A crash
// leaves them in flight in the ledger, unpaid; they come back after their lease.

// claimAheadAt is the fraction of a claim's size left unsent at which the next claim is
// made ahead: 1/claimAheadAt of it.
const claimAheadAt = 4

// claimResult is what a claim ahead took.
type claimResult struct {
	items []Item
	max   int // how many it asked for
	err   error
}

// claim sets r.claimed, empty when it is called, to the next requests: those a claim
// ahead took, or, when there was none or it took none (the ledger may have more since),
// those a claim made now takes.
func (r *Run) claim(ctx context.Context) error {
	if r.ahead != nil {
		res := <-r.ahead
		r.ahead = nil
		if res.err != nil {
			return res.err
		}
		if len(res.items) > 0 {
			r.noteClaim(res.items)
			r.claimed = res.items
			r.claimFull = len(res.items) >= res.max
			return nil
		}
	}
	n := r.claimSize()
	items, err := r.e.store.Claim(ctx, ClaimParams{JobID: r.job.ID, Owner: r.e.cfg.Owner, Max: n, Lease: r.e.cfg.Lease})
	if err != nil {
		return err
	}
	r.noteClaim(items)
	r.claimed = items
	r.claimFull = len(items) >= n
	return nil
}

// claimAheadIfLow starts a claim ahead when the requests claimed and not yet taken by
// the dispatcher are low, none is being made, and the last claim found the ledger full
// (after one that found it dry the next claim waits until it is needed, as it did
// before). It is called when the dispatcher has just taken a request off r.claimed: that
// one is not sent yet either, and counts against the claim's size.
func (r *Run) claimAheadIfLow(ctx context.Context) {
	if r.ahead != nil || !r.claimFull {
		return
	}
	size := r.claimSize()
	unsent := len(r.claimed) + 1
	if unsent > size/claimAheadAt {
		return
	}
	n := size - unsent
	if n <= 0 {
		return
	}
	r.ahead = make(chan claimResult, 1)
	p := ClaimParams{JobID: r.job.ID, Owner: r.e.cfg.Owner, Max: n, Lease: r.e.cfg.Lease}
	go func(ahead chan<- claimResult) { // joined by claim or by shutdown
		items, err := r.e.store.Claim(ctx, p)
		ahead <- claimResult{items: items, max: n, err: err}
	}(r.ahead)
}
