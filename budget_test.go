package sluice_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sluice-llm/sluice"
)

// perToken prices every token at $1, so costs are token counts.
func perToken(_ string, u sluice.Usage) float64 { return float64(u.Total()) }

func TestBudget(t *testing.T) {
	tests := []struct {
		name   string
		budget sluice.Budget
		// maxOut is each request's output bound; the fake answers 10 prompt + 5
		// completion tokens whatever the bound.
		maxOut int64
		// wantDone is how many requests the budget lets through.
		wantDone int64
	}{
		// Worst case = actual = 15 each: exactly 10 fit in 150.
		{"cost cap, worst case exact", sluice.Budget{MaxCost: 150}, 5, 10},
		{"token cap, worst case exact", sluice.Budget{MaxTokens: 150}, 5, 10},
		// Worst case 60, actual 15: reservations settle, so the budget is spent on
		// real usage: 150 - 60 + 15 … until less than a worst case is left.
		{"cost cap, worst case above actual", sluice.Budget{MaxCost: 150}, 50, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) }}
			st := newStore(t)
			job := newJob(t, st)
			src := requests(40)
			for i := range src.lines {
				src.lines[i].Estimate.MaxOutputTokens = tt.maxOut
			}
			cfg := fastConfig()
			cfg.Cost, cfg.Budget = perToken, tt.budget
			err := runJob(t, st, up, cfg, job, src)
			if !errors.Is(err, sluice.ErrBudgetExhausted) {
				t.Fatalf("run error = %v, want ErrBudgetExhausted", err)
			}
			stats, _ := st.Stats(context.Background(), job.ID)
			if stats.Done != tt.wantDone || stats.Failed != 0 {
				t.Errorf("done %d failed %d, want %d done", stats.Done, stats.Failed, tt.wantDone)
			}
			if spent := stats.Usage.Total(); spent > 150 {
				t.Errorf("spent %d, over the budget of 150", spent)
			}
			if n := up.total.Load(); n != tt.wantDone {
				t.Errorf("sent %d requests, want %d", n, tt.wantDone)
			}
			got, _ := st.Job(context.Background(), job.ID)
			if got.State != sluice.JobBudget {
				t.Errorf("job state %s, want %s", got.State, sluice.JobBudget)
			}
			// A higher budget resumes the job; earlier runs' spending counts.
			cfg.Budget.MaxCost *= 2
			cfg.Budget.MaxTokens *= 2
			if err := runJob(t, st, up, cfg, got, nil); !errors.Is(err, sluice.ErrBudgetExhausted) {
				t.Fatalf("resume with double budget: %v, want exhausted again", err)
			}
			if stats, _ = st.Stats(context.Background(), job.ID); stats.Usage.Total() > 300 || stats.Done <= tt.wantDone {
				t.Errorf("after doubling: done %d, spent %d; want more done and at most 300 spent", stats.Done, stats.Usage.Total())
			}
			// Without a cap it finishes, and nothing done is sent again.
			cfg.Budget = sluice.Budget{}
			if err := runJob(t, st, up, cfg, got, nil); err != nil {
				t.Fatalf("resume without a cap: %v", err)
			}
			lines, _ := readOutput(t, st, job.ID)
			checkExactlyOnce(t, lines, 40)
			if n := up.total.Load(); n != 40 {
				t.Errorf("sent %d requests in all, want 40", n)
			}
		})
	}
}

// TestBudgetOvershootBoundedByInFlight checks the guarantee: spending never passes
// the cap by more than the worst cases of the requests in flight, here with answers
// that use their whole output bound and a concurrency that keeps many in flight.
func TestBudgetOvershootBoundedByInFlight(t *testing.T) {
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) }}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 64
	cfg.Cost, cfg.Budget = perToken, sluice.Budget{MaxCost: 1000}
	err := runJob(t, st, up, cfg, job, requests(500))
	if !errors.Is(err, sluice.ErrBudgetExhausted) {
		t.Fatalf("run error = %v", err)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if spent := stats.Usage.Total(); spent > 1000 || spent < 1000-15 {
		t.Errorf("spent %d of 1000, want within one request's worst case below the cap", spent)
	}
}

// TestBudgetPoolSharedByRuns: two jobs run at once from one pool stop together before
// the pool's cap, which counts what it started with.
func TestBudgetPoolSharedByRuns(t *testing.T) {
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) }}
	st := newStore(t)
	eng, err := sluice.New(st, up, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	// $1 a token, $300 cap, $60 already spent: 240 left, 16 requests of 15.
	pool := sluice.NewBudgetPool(sluice.Budget{MaxCost: 300}, perToken, 60, 60)
	var runs []*sluice.Run
	for _, name := range []string{"a", "b"} {
		job := &sluice.Job{ID: "job_pool_" + name, State: sluice.JobRunning, Options: []byte(`{}`)}
		if err := st.CreateJob(context.Background(), job); err != nil {
			t.Fatal(err)
		}
		run, err := eng.Start(context.Background(), job, requests(40), sluice.WithBudgetPool(pool))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	for _, run := range runs {
		if err := run.Wait(); !errors.Is(err, sluice.ErrBudgetExhausted) {
			t.Errorf("run error = %v, want ErrBudgetExhausted", err)
		}
	}
	if n := up.total.Load(); n != 16 {
		t.Errorf("%d requests sent from a pool with room for 16", n)
	}
	if cost, tokens := pool.Spent(); cost != 300 || tokens != 300 {
		t.Errorf("pool spent $%v and %d tokens, want 300 and 300", cost, tokens)
	}
	if !pool.Exhausted() {
		t.Error("the pool does not say it is exhausted after refusing its runs")
	}
}
