package sluice_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

// claimStore calls onClaim before each Claim, and counts the claims that took requests.
type claimStore struct {
	sluice.Store
	onClaim func(ctx context.Context, p sluice.ClaimParams)
	took    atomic.Int64
}

func (s *claimStore) Claim(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
	s.onClaim(ctx, p)
	items, err := s.Store.Claim(ctx, p)
	if len(items) > 0 {
		s.took.Add(1)
	}
	return items, err
}

// TestClaimAheadWhileSending: the next claim is made while the last one's requests are
// being sent, not once the last of them is. With one slot, the first request's answer
// waits for the second claim to start; a dispatcher that claims only when its claimed
// requests are used up cannot start it before that answer, and the answer gives up.
func TestClaimAheadWhileSending(t *testing.T) {
	second := make(chan struct{}) // closed when a claim starts after one took requests
	var once sync.Once
	st := &claimStore{Store: newStore(t)}
	st.onClaim = func(context.Context, sluice.ClaimParams) {
		if st.took.Load() > 0 {
			once.Do(func() { close(second) })
		}
	}
	job := newJob(t, st)
	var stalled atomic.Bool
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		if req.CustomID == "req-0001" {
			select {
			case <-second:
			case <-time.After(5 * time.Second):
				stalled.Store(true)
			}
		}
		return ok(req)
	}}
	cfg := fastConfig()
	cfg.Concurrency = 1
	if err := runJob(t, st, up, cfg, job, requests(40)); err != nil {
		t.Fatal(err)
	}
	if stalled.Load() {
		t.Error("the second claim waited for the first request's answer: it was not made while the first claim's requests were sent")
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 40)
}

// TestClaimAheadKeepsCrashBound: a crash at any moment leaves in flight in the ledger (and
// counts as re-paid on the next run) at most the concurrency, which may have been
// answered, and one claim, which was not sent: a claim made ahead asks for no more than
// the claim's size less what is still claimed and unsent. Checked at every claim: the
// rows in flight before it plus what it asks for.
func TestClaimAheadKeepsCrashBound(t *testing.T) {
	const concurrency, claimSize = 8, 16 // a claim is the concurrency, 16 at least
	var (
		mu     sync.Mutex
		worst  int64
		claims int
	)
	inner := newStore(t)
	job := newJob(t, inner)
	st := &claimStore{Store: inner, onClaim: func(ctx context.Context, p sluice.ClaimParams) {
		stats, err := inner.Stats(ctx, p.JobID)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		claims++
		worst = max(worst, stats.InFlight+int64(p.Max))
	}}
	up := &fakeUpstream{do: func(ctx context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		select { // an upstream's latency, so that the slots fill
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
		}
		return ok(req)
	}}
	cfg := fastConfig()
	cfg.Concurrency = concurrency
	if err := runJob(t, st, up, cfg, job, requests(400)); err != nil {
		t.Fatal(err)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 400)
	t.Logf("%d claims; at most %d requests in flight in the ledger with a claim's", claims, worst)
	if worst > concurrency+claimSize {
		t.Errorf("%d requests in flight in the ledger with a claim's, want at most the concurrency and one claim (%d)", worst, concurrency+claimSize)
	}
}
