package batch_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
)

// onlineRun is the online half of a hybrid run: an engine over its own upstream.
func onlineRun(t *testing.T, c *client, up *upstream) func(context.Context) error {
	eng, err := sluice.New(c.st, up.client(t), sluice.Config{Concurrency: 8, Owner: "online"})
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context) error {
		run, err := eng.Start(ctx, c.job, nil, sluice.StopWhenIdle())
		if err != nil {
			return err
		}
		return run.Wait()
	}
}

// The batch finishes what it can; when the deadline nears, the rest is cancelled and run
// online, and everything is done before the deadline, each request paid once. The plan's
// clock is the test's: it stands still until the batch has finished the fast requests,
// then moves a step per poll, so that when the run goes online depends on the plan alone,
// never on how loaded the machine is.
func TestHybridGoesOnlineBeforeDeadline(t *testing.T) {
	t.Parallel()
	p := startProvider(t, providerOpts{})
	c := newClient(t, append(requests("fast-", "gpt-4o-mini", 20), requests("slow-", "gpt-4o-mini", 5)...))
	r := newRunner(t, c.st, p.api, batch.Config{})
	online := newUpstream(t)
	online.release()
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const step = 100 * time.Millisecond
	var elapsed atomic.Int64 // the plan's clock, as time since start
	plan := batch.Plan{Deadline: start.Add(4 * time.Second), Reserve: 1500 * time.Millisecond, Poll: 20 * time.Millisecond,
		Rate: batch.Rate{Concurrency: 8, Latency: 50 * time.Millisecond},
		Now:  func() time.Time { return start.Add(time.Duration(elapsed.Load())) }}
	var why []string
	var switchedAt time.Duration
	err := r.RunHybrid(context.Background(), c.job, plan, onlineRun(t, c, online), func(ev batch.HybridEvent) {
		if ev.Switched {
			why = append(why, ev.Why)
			switchedAt = time.Duration(elapsed.Load())
			return
		}
		var completed int64
		for _, part := range ev.Progress.Parts {
			completed += part.Counts.Completed
		}
		if completed >= 20 { // the fast ones are done: time moves on
			elapsed.Add(int64(step))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(why) != 1 || !strings.Contains(why[0], "deadline") {
		t.Fatalf("switches: %q; want one, for the deadline", why)
	}
	// It waited for the batch as long as it could, and no longer: the switch is due 1.5 s
	// (reserve) and 5 × 50 ms / 8 × 1.25 before the deadline, 2.44 s after the start; the
	// clock moves a step at a time.
	if due := plan.Deadline.Sub(start) - plan.Reserve - step; switchedAt < due || switchedAt > due+step {
		t.Errorf("went online %s after the start, want within a step after %s", switchedAt, due)
	}
	c.checkOutput(t)
	for _, id := range c.ids {
		inBatch, onLine := p.up.count(id), online.count(id)
		want := [2]int{1, 0}
		if strings.HasPrefix(id, "slow-") {
			want = [2]int{0, 1}
		}
		if [2]int{inBatch, onLine} != want {
			t.Errorf("%s answered %d times in the batch and %d online, want %v", id, inBatch, onLine, want)
		}
	}
	parts, err := c.st.Parts(context.Background(), c.job.ID)
	if err != nil || len(parts) != 1 || parts[0].Status != sluice.BatchCancelled || parts[0].Usage.Total() == 0 {
		t.Fatalf("parts: %v %s; want the one batch, cancelled, with the fast ones' usage", err, describeParts(parts))
	}
	if c.job.State != sluice.JobCompleted {
		t.Errorf("job %s, want completed", c.job.State)
	}
}

// With too little time for any batch, nothing is submitted: all of it runs online.
func TestHybridWithoutTimeRunsOnline(t *testing.T) {
	t.Parallel()
	p := startProvider(t, providerOpts{})
	c := newClient(t, requests("r", "gpt-4o-mini", 10))
	r := newRunner(t, c.st, p.api, batch.Config{})
	online := newUpstream(t)
	plan := batch.Plan{Deadline: time.Now().Add(time.Minute), Reserve: 2 * time.Minute, Poll: 20 * time.Millisecond}
	var switched int
	err := r.RunHybrid(context.Background(), c.job, plan, onlineRun(t, c, online), func(ev batch.HybridEvent) {
		if ev.Switched {
			switched++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := c.st.Parts(context.Background(), c.job.ID)
	if err != nil || len(parts) != 0 || switched != 1 {
		t.Fatalf("%d parts, %d switches (%v); want none submitted, one switch", len(parts), switched, err)
	}
	c.checkOutput(t)
	for _, id := range c.ids {
		if online.count(id) != 1 {
			t.Errorf("%s answered %d times online", id, online.count(id))
		}
	}
}

// An upstream without a Batch API: sluice batch stops with ErrNoBatchAPI, and a hybrid
// run goes online at once, every request once.
func TestNoBatchAPI(t *testing.T) {
	t.Parallel()
	up := newUpstream(t) // the simulator answers 404 to /v1/files
	c := newClient(t, requests("r", "gpt-4o-mini", 6))
	r := newRunner(t, c.st, up.client(t), batch.Config{})
	if _, err := r.Step(context.Background(), c.job, true); !errors.Is(err, batch.ErrNoBatchAPI) {
		t.Fatalf("step: %v; want ErrNoBatchAPI", err)
	}
	var why []string
	plan := batch.Plan{Deadline: time.Now().Add(time.Hour), Reserve: time.Second, Poll: 10 * time.Millisecond}
	err := r.RunHybrid(context.Background(), c.job, plan, onlineRun(t, c, up), func(ev batch.HybridEvent) {
		if ev.Switched {
			why = append(why, ev.Why)
		}
	})
	if err != nil || len(why) != 1 || why[0] != "the upstream has no Batch API" {
		t.Fatalf("hybrid: %v, switches %q", err, why)
	}
	c.checkOutput(t)
	for _, id := range c.ids {
		if n := up.count(id); n != 1 {
			t.Errorf("%s answered %d times", id, n)
		}
	}
}
