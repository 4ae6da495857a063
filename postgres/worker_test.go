package postgres_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/postgres"
)

// newJob creates a running job with n pending requests in st.
func newJob(t *testing.T, st *postgres.Store, id string, n int) {
	t.Helper()
	ctx := t.Context()
	if err := st.CreateJob(ctx, &sluice.Job{ID: id, State: sluice.JobRunning, Input: "in.jsonl", Fingerprint: "fp"}); err != nil {
		t.Fatal(err)
	}
	reqs := make([]sluice.NewRequest, n)
	for i := range reqs {
		reqs[i] = sluice.NewRequest{Line: int64(i + 1), Request: sluice.Request{CustomID: fmt.Sprintf("r%d", i+1),
			Method: "POST", URL: sluice.EndpointChatCompletions, Body: json.RawMessage(`{}`)}}
	}
	if err := st.AddRequests(ctx, id, reqs); err != nil {
		t.Fatal(err)
	}
}

// TestLockJob: one process at a time holds a job's lock; JobHeld sees it from another
// connection, and the lock is free again after unlock.
func TestLockJob(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	newJob(t, st, "job-a", 1)
	if held, err := st.JobHeld(ctx, "job-a"); err != nil || held {
		t.Fatalf("JobHeld before any lock = %v, %v; want false", held, err)
	}
	unlock, err := st.LockJob(ctx, "job-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.LockJob(ctx, "job-a"); !errors.Is(err, sluice.ErrJobHeld) {
		t.Errorf("second LockJob = %v, want ErrJobHeld", err)
	}
	if held, err := st.JobHeld(ctx, "job-a"); err != nil || !held {
		t.Errorf("JobHeld while locked = %v, %v; want true", held, err)
	}
	if held, _ := st.JobHeld(ctx, "job-b"); held {
		t.Error("JobHeld of another job is true")
	}
	unlock()
	if held, err := st.JobHeld(ctx, "job-a"); err != nil || held {
		t.Errorf("JobHeld after unlock = %v, %v; want false", held, err)
	}
	unlock2, err := st.LockJob(ctx, "job-a")
	if err != nil {
		t.Fatalf("LockJob after unlock: %v", err)
	}
	unlock2()
}

// TestHeartbeatCountsAndReleasesTheDead: live workers are counted; a worker whose
// heartbeats stopped is forgotten, and the requests it held go back to pending at the
// next heartbeat of another worker, counted as re-paid when claimed again.
func TestHeartbeatCountsAndReleasesTheDead(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	newJob(t, st, "job-a", 10)
	t0 := time.Now()
	const ttl = 6 * time.Second
	for i, owner := range []string{"w1", "w2", "w3"} {
		live, err := st.Heartbeat(ctx, "job-a", owner, t0, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if live != i+1 {
			t.Errorf("%s's heartbeat: %d live, want %d", owner, live, i+1)
		}
	}
	if held, _ := st.JobHeld(ctx, "job-a"); !held {
		t.Error("JobHeld = false with live workers")
	}
	if _, err := st.Claim(ctx, sluice.ClaimParams{JobID: "job-a", Owner: "w3", Max: 4, Lease: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := st.Leave(ctx, "job-a", "w2"); err != nil {
		t.Fatal(err)
	}
	// w3 dies: only w1 beats, past w3's expiry.
	live, err := st.Heartbeat(ctx, "job-a", "w1", t0.Add(ttl+time.Second), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if live != 1 {
		t.Errorf("after w2 left and w3 died: %d live, want 1", live)
	}
	s, err := st.Stats(ctx, "job-a")
	if err != nil {
		t.Fatal(err)
	}
	if s.InFlight != 0 || s.Pending != 10 {
		t.Fatalf("after w3 died: %d in flight, %d pending; want 0, 10", s.InFlight, s.Pending)
	}
	items, err := st.Claim(ctx, sluice.ClaimParams{JobID: "job-a", Owner: "w1", Max: 10, Lease: time.Hour})
	if err != nil || len(items) != 10 {
		t.Fatalf("claim after the release: %d items, %v", len(items), err)
	}
	if s, _ := st.Stats(ctx, "job-a"); s.Repaid != 4 {
		t.Errorf("repaid %d, want the 4 w3 held", s.Repaid)
	}
}

// TestReleaseDeadKeepsLiveWorkers: a run taking a job over returns the requests of
// owners that are not live workers, and leaves the live workers' alone.
func TestReleaseDeadKeepsLiveWorkers(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	newJob(t, st, "job-a", 6)
	now := time.Now()
	if _, err := st.Heartbeat(ctx, "job-a", "live", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"live", "crashed"} {
		if _, err := st.Claim(ctx, sluice.ClaimParams{JobID: "job-a", Owner: owner, Max: 3, Lease: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.ReleaseDead(ctx, "job-a", now); err != nil {
		t.Fatal(err)
	}
	s, err := st.Stats(ctx, "job-a")
	if err != nil {
		t.Fatal(err)
	}
	if s.InFlight != 3 || s.Pending != 3 {
		t.Errorf("%d in flight, %d pending; want the live worker's 3 in flight, the crashed one's 3 pending", s.InFlight, s.Pending)
	}
}

// TestSharedLimits: limits published by a worker are read by the next; 0 keeps a limit.
func TestSharedLimits(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	newJob(t, st, "job-a", 1)
	if rpm, tpm, err := st.SharedLimits(ctx, "job-a"); err != nil || rpm != 0 || tpm != 0 {
		t.Fatalf("SharedLimits of a new job = %v, %v, %v; want 0, 0", rpm, tpm, err)
	}
	if err := st.PublishLimits(ctx, "job-a", 5400, 900000); err != nil {
		t.Fatal(err)
	}
	if err := st.PublishLimits(ctx, "job-a", 0, 800000); err != nil {
		t.Fatal(err)
	}
	if rpm, tpm, err := st.SharedLimits(ctx, "job-a"); err != nil || rpm != 5400 || tpm != 800000 {
		t.Errorf("SharedLimits = %v, %v, %v; want 5400, 800000", rpm, tpm, err)
	}
	if _, _, err := st.SharedLimits(ctx, "job-x"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("SharedLimits of no job = %v, want ErrNotFound", err)
	}
}

// TestReserveBudget: reservations start from the base given first, are refused past the
// cap (nothing committed), come back with ReturnBudget, and are forgotten by ResetBudget
// once no worker is live.
func TestReserveBudget(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	newJob(t, st, "job-a", 1)
	limit := sluice.Budget{MaxTokens: 1000}
	reserve := func(base, add int64) bool {
		t.Helper()
		ok, err := st.ReserveBudget(ctx, "job-a", sluice.Spend{Tokens: base}, sluice.Spend{Tokens: add}, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !reserve(300, 500) { // 800 committed
		t.Fatal("a first reservation within the cap was refused")
	}
	if reserve(0, 300) { // 1100: over
		t.Error("a reservation past the cap was granted")
	}
	if !reserve(0, 200) { // 1000: the base counts once
		t.Error("a reservation up to the cap was refused")
	}
	if err := st.ReturnBudget(ctx, "job-a", sluice.Spend{Tokens: 400}); err != nil {
		t.Fatal(err)
	}
	if !reserve(0, 400) || reserve(0, 1) {
		t.Error("what was given back is not free again, or more is")
	}
	now := time.Now()
	if _, err := st.Heartbeat(ctx, "job-a", "w1", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := st.ResetBudget(ctx, "job-a", now); err != nil {
		t.Fatal(err)
	}
	if reserve(0, 1) {
		t.Error("ResetBudget forgot the budget while a worker is live")
	}
	if err := st.ResetBudget(ctx, "job-a", now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !reserve(100, 900) {
		t.Error("after ResetBudget with no live worker, reservations do not start again from the base")
	}
}

// TestDeleteJobForgetsWorkers: a deleted job leaves no worker rows behind.
func TestDeleteJobForgetsWorkers(t *testing.T) {
	u, schema := schemaURL(t)
	ctx := t.Context()
	st, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	newJob(t, st, "job-a", 1)
	if _, err := st.Heartbeat(ctx, "job-a", "w1", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteJob(ctx, "job-a"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "worker"}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d worker rows left after the job was deleted", n)
	}
}
