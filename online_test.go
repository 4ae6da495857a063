package sluice_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

var onlineEst = sluice.Estimate{Model: "gpt-4o-mini", PromptTokens: 10, MaxOutputTokens: 5}

func okResponse() *sluice.Response {
	return &sluice.Response{StatusCode: 200, Usage: sluice.Usage{PromptTokens: 10, CompletionTokens: 5}}
}

// TestAdmitGoesBeforeBatches lets an online request through while a batch holds every
// slot, and holds the batch's next request until the online one is done.
func TestAdmitGoesBeforeBatches(t *testing.T) {
	st := newStore(t)
	release := make(chan struct{})
	started := make(chan string, 2)
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		started <- req.CustomID
		if req.CustomID == "req-0001" {
			<-release
		}
		return ok(req)
	}}
	cfg := fastConfig()
	cfg.Concurrency, cfg.RPM = 1, 1e6 // a window of one slot from the start
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(context.Background(), newJob(t, st), requests(2))
	if err != nil {
		t.Fatal(err)
	}
	if id := <-started; id != "req-0001" {
		t.Fatalf("first request %s", id)
	}
	// The batch holds the only slot: the online request goes anyway.
	done, err := eng.Admit(context.Background(), onlineEst, 0)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	select {
	case id := <-started:
		t.Fatalf("batch request %s sent while the online request held the slot", id)
	case <-time.After(50 * time.Millisecond): // an absence cannot be waited for
	}
	done(okResponse(), nil)
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if id := <-started; id != "req-0002" {
		t.Fatalf("second request %s", id)
	}
}

// TestAdmitBreakerOpen refuses at once while the breaker is open, after faults reported
// by online requests.
func TestAdmitBreakerOpen(t *testing.T) {
	cfg := fastConfig()
	cfg.BreakerFailures, cfg.BreakerCooldown = 2, time.Minute
	eng, err := sluice.New(newStore(t), &fakeUpstream{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		done, err := eng.Admit(context.Background(), onlineEst, 0)
		if err != nil {
			t.Fatal(err)
		}
		done(nil, &sluice.UpstreamError{Code: sluice.CodeConnection})
	}
	if _, err := eng.Admit(context.Background(), onlineEst, 0); !errors.Is(err, sluice.ErrBreakerOpen) {
		t.Fatalf("err = %v, want ErrBreakerOpen", err)
	}
}

// TestAdmitLearnsLimits: the limit headers of an online answer bind the next request, so
// that online and batch traffic share what was learned; a wait past the deadline fails
// at once with ErrRateLimited.
func TestAdmitLearnsLimits(t *testing.T) {
	eng, err := sluice.New(newStore(t), &fakeUpstream{}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	done, err := eng.Admit(context.Background(), onlineEst, 0)
	if err != nil {
		t.Fatal(err)
	}
	resp := okResponse()
	resp.Limits = sluice.RateLimits{HasRequests: true, LimitRequests: 30, RemainingRequests: 0} // the next request waits 2 s
	done(resp, nil)
	start := time.Now()
	if _, err := eng.Admit(context.Background(), onlineEst, 100*time.Millisecond); !errors.Is(err, sluice.ErrRateLimited) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := eng.Admit(ctx, onlineEst, 0); !errors.Is(err, sluice.ErrRateLimited) {
		t.Fatalf("with a deadline: err = %v, want ErrRateLimited", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("refused after %v: it should not wait for a wait it cannot finish", d)
	}
}

// TestPoolReserve holds worst cases against a pool until they settle.
func TestPoolReserve(t *testing.T) {
	pool := sluice.NewBudgetPool(sluice.Budget{MaxTokens: 100}, nil, 0, 0)
	est := sluice.Estimate{Model: "m", PromptTokens: 10, MaxOutputTokens: 50}
	settle, ok := pool.Reserve(est, 0)
	if !ok {
		t.Fatal("first request refused")
	}
	if _, ok := pool.Reserve(est, 0); ok {
		t.Fatal("a second worst case of 60 fit in the 40 left")
	}
	settle(sluice.Usage{PromptTokens: 10, CompletionTokens: 10})
	settle(sluice.Usage{PromptTokens: 10, CompletionTokens: 10}) // a second call changes nothing
	if _, tokens := pool.Spent(); tokens != 20 {
		t.Fatalf("spent %d tokens, want 20", tokens)
	}
	if _, ok := pool.Reserve(est, 0); !ok {
		t.Fatal("60 did not fit in the 80 left")
	}
}

// TestAdmitGoesAheadOfQueuedSends skips a limiter wait of up to OnlineAhead (the debt
// falls on the batches' next sends), and no more.
func TestAdmitGoesAheadOfQueuedSends(t *testing.T) {
	cfg := fastConfig()
	// 4 requests per OnlineAhead, a burst of 4 a second's worth: the first 4 go at once,
	// the next 4 wait up to OnlineAhead (skipped), the 9th longer.
	cfg.RPM = 60 * 4 / sluice.OnlineAhead.Seconds()
	eng, err := sluice.New(newStore(t), &fakeUpstream{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		done, err := eng.Admit(context.Background(), onlineEst, time.Millisecond)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		done(okResponse(), nil)
	}
	if _, err := eng.Admit(context.Background(), onlineEst, time.Millisecond); !errors.Is(err, sluice.ErrRateLimited) {
		t.Fatalf("9th request: err = %v, want ErrRateLimited", err)
	}
}

// attempts is an Observer that keeps what it is told.
type attempts struct {
	mu  sync.Mutex
	got []sluice.Attempt
}

func (o *attempts) ObserveAttempt(a *sluice.Attempt) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, *a)
}

// TestAdmitObserved tells the Engine's Observer about online requests, as "online".
func TestAdmitObserved(t *testing.T) {
	obs := &attempts{}
	cfg := fastConfig()
	cfg.Observer = obs
	cfg.Cost = func(string, sluice.Usage) float64 { return 0.5 }
	eng, err := sluice.New(newStore(t), &fakeUpstream{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, answer := range []struct {
		resp *sluice.Response
		err  error
	}{
		{okResponse(), nil},
		{&sluice.Response{StatusCode: 429}, &sluice.UpstreamError{StatusCode: 429}},
		{nil, &sluice.UpstreamError{Code: sluice.CodeConnection}},
	} {
		done, err := eng.Admit(context.Background(), onlineEst, 0)
		if err != nil {
			t.Fatal(err)
		}
		done(answer.resp, answer.err)
	}
	kinds := []sluice.AttemptKind{}
	for _, a := range obs.got {
		if a.JobID != sluice.OnlineJobID || a.Model != "gpt-4o-mini" {
			t.Fatalf("attempt %+v", a)
		}
		kinds = append(kinds, a.Kind)
	}
	want := []sluice.AttemptKind{sluice.AttemptOK, sluice.AttemptThrottled, sluice.AttemptRetry}
	if len(kinds) != 3 || kinds[0] != want[0] || kinds[1] != want[1] || kinds[2] != want[2] || obs.got[0].Cost != 0.5 {
		t.Fatalf("kinds %v (want %v), cost %v", kinds, want, obs.got[0].Cost)
	}
}
