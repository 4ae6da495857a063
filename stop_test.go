package sluice_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/mock"
)

// okUpstream answers every request 200.
func okUpstream() *mock.Upstream {
	return &mock.Upstream{
		DoFunc:     func(_ context.Context, req *sluice.Request) (*sluice.Response, error) { return ok(req) },
		ModelsFunc: func(context.Context) ([]string, error) { return nil, nil },
	}
}

// TestCancelDuringClaimIsNotCompletion: a cancel that makes Claim fail is a stop, never
// "nothing left". Before the fix the job ended completed with requests still pending,
// and every later run said "already complete".
func TestCancelDuringClaimIsNotCompletion(t *testing.T) {
	real := newStore(t)
	job := newJob(t, real)
	// The input is in the ledger before the run, so the run only claims.
	if err := real.AddRequests(context.Background(), job.ID, requests(100).lines); err != nil {
		t.Fatal(err)
	}
	job.Ingested, job.IngestDone = 100, true
	st := mock.Wrap(real)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var claims atomic.Int64
	st.ClaimFunc = func(cctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
		if claims.Add(1) == 2 { // the second claim is cancelled under it
			cancel()
			return nil, cctx.Err()
		}
		return real.Claim(cctx, sluice.ClaimParams{JobID: p.JobID, Owner: p.Owner, Max: min(p.Max, 10), Lease: p.Lease, Now: p.Now})
	}
	eng, err := sluice.New(st, okUpstream(), fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(ctx, job, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Wait(); !errors.Is(err, sluice.ErrInterrupted) {
		t.Fatalf("run error = %v, want ErrInterrupted", err)
	}
	got, err := real.Job(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != sluice.JobInterrupted {
		t.Errorf("job state %s, want interrupted", got.State)
	}
	stats, err := real.Stats(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Pending == 0 || stats.InFlight != 0 || stats.Pending+stats.Done != 100 {
		t.Errorf("pending %d in flight %d done %d: want the rest pending, none in flight", stats.Pending, stats.InFlight, stats.Done)
	}
}

// errDiskFull is a store failure as a full disk gives it.
var errDiskFull = &os.PathError{Op: "write", Path: "sluice.db-wal", Err: syscall.ENOSPC}

// TestStoreFaultAtEveryCall injects a failure and a cancel at each store call the engine
// makes, and checks that the run ends in the right state, that no request is lost (a
// rerun finishes every one, exactly once) and, through TestMain, that no goroutine leaks.
func TestStoreFaultAtEveryCall(t *testing.T) {
	const n = 300 // ingested in two AddRequests calls: 64, then the rest
	type want struct {
		state   sluice.JobState // "" when Start itself fails
		waitErr error           // what Wait's error wraps (nil: no error)
	}
	failed := want{sluice.JobFailed, syscall.ENOSPC}
	interrupted := want{sluice.JobInterrupted, sluice.ErrInterrupted}
	for _, tc := range []struct {
		method string
		nth    int64 // the call that goes wrong
		fail   want
		cancel want
	}{
		{"Stats", 1, want{}, want{}},           // at Start: Start returns the error
		{"Unfinished", 1, failed, interrupted}, // the end-of-run check
		{"AddRequests", 2, failed, interrupted},
		{"Claim", 1, failed, interrupted},
		{"Claim", 3, failed, interrupted},
		{"Complete", 1, failed, interrupted},
		{"Renew", 1, want{sluice.JobCompleted, nil}, interrupted}, // a failed renew is only a warning
		{"UpdateJob", 1, failed, interrupted},                     // the end of ingest
		{"Release", 1, failed, want{sluice.JobCompleted, nil}},    // every request was final already
	} {
		for _, mode := range []string{"fail", "cancel"} {
			t.Run(fmt.Sprintf("%s#%d/%s", tc.method, tc.nth, mode), func(t *testing.T) {
				w := tc.fail
				if mode == "cancel" {
					w = tc.cancel
				}
				real := newStore(t)
				job := newJob(t, real)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var calls atomic.Int64
				// inject goes wrong at the nth call of the method; otherwise it lets it be.
				inject := func(cctx context.Context) (bool, error) {
					if calls.Add(1) != tc.nth {
						return false, nil
					}
					if mode == "fail" {
						return true, fmt.Errorf("sqlite: %w", errDiskFull)
					}
					cancel()
					return cctx.Err() != nil, cctx.Err()
				}
				st := faultyStore(real, tc.method, inject)
				renewed := make(chan struct{})
				var renewOnce sync.Once
				if tc.method == "Renew" {
					renew := st.RenewFunc
					st.RenewFunc = func(ctx context.Context, p sluice.RenewParams) error {
						defer renewOnce.Do(func() { close(renewed) })
						return renew(ctx, p)
					}
				}
				up := okUpstream()
				up.DoFunc = func(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
					if tc.method == "Renew" && req.CustomID == "req-0001" {
						select { // hold the first answer until a renew went wrong
						case <-renewed:
						case <-ctx.Done():
							return nil, &sluice.UpstreamError{Code: sluice.CodeTimeout, Err: ctx.Err()}
						}
					}
					return ok(req)
				}
				cfg := fastConfig()
				cfg.Lease = 30 * time.Millisecond
				eng, err := sluice.New(st, up, cfg)
				if err != nil {
					t.Fatal(err)
				}
				run, err := eng.Start(ctx, job, requests(n))
				if w.state == "" {
					if err == nil {
						t.Fatal("Start succeeded, want its error")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				err = run.Wait()
				switch {
				case w.waitErr == nil && err != nil:
					t.Fatalf("Wait = %v, want nil", err)
				case w.waitErr != nil && !errors.Is(err, w.waitErr):
					t.Fatalf("Wait = %v, want it to wrap %v", err, w.waitErr)
				}
				got, err := real.Job(context.Background(), job.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != w.state {
					t.Errorf("job state %s (%s), want %s", got.State, got.Error, w.state)
				}
				if tc.method != "Release" {
					if stats, _ := real.Stats(context.Background(), job.ID); stats.InFlight != 0 {
						t.Errorf("%d requests left in flight", stats.InFlight)
					}
				}
				// Nothing is lost: a rerun (after releasing, as a new process does) ends
				// with every request done once.
				if err := real.Release(context.Background(), job.ID, ""); err != nil {
					t.Fatal(err)
				}
				if err := runJob(t, real, okUpstream(), fastConfig(), got, requests(n)); err != nil {
					t.Fatalf("rerun: %v", err)
				}
				lines, errs := readOutput(t, real, job.ID)
				checkExactlyOnce(t, lines, n)
				if len(errs) != 0 {
					t.Errorf("%d failed requests", len(errs))
				}
			})
		}
	}
}

// faultyStore wraps real so that method's calls first ask inject whether to go wrong.
func faultyStore(real sluice.Store, method string, inject func(context.Context) (bool, error)) *mock.Store {
	st := mock.Wrap(real)
	switch method {
	case "Stats":
		st.StatsFunc = func(ctx context.Context, jobID string) (*sluice.Stats, error) {
			if bad, err := inject(ctx); bad {
				return nil, err
			}
			return real.Stats(ctx, jobID)
		}
	case "Unfinished":
		st.UnfinishedFunc = func(ctx context.Context, jobID string) (bool, bool, error) {
			if bad, err := inject(ctx); bad {
				return false, false, err
			}
			return real.Unfinished(ctx, jobID)
		}
	case "AddRequests":
		st.AddRequestsFunc = func(ctx context.Context, jobID string, reqs []sluice.NewRequest) error {
			if bad, err := inject(ctx); bad {
				return err
			}
			return real.AddRequests(ctx, jobID, reqs)
		}
	case "Claim":
		st.ClaimFunc = func(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
			if bad, err := inject(ctx); bad {
				return nil, err
			}
			return real.Claim(ctx, p)
		}
	case "Complete":
		st.CompleteFunc = func(ctx context.Context, jobID, owner string, outcomes []sluice.Outcome) error {
			if bad, err := inject(ctx); bad {
				return err
			}
			return real.Complete(ctx, jobID, owner, outcomes)
		}
	case "Renew":
		st.RenewFunc = func(ctx context.Context, p sluice.RenewParams) error {
			if bad, err := inject(ctx); bad {
				return err
			}
			return real.Renew(ctx, p)
		}
	case "UpdateJob":
		st.UpdateJobFunc = func(ctx context.Context, job *sluice.Job) error {
			if bad, err := inject(ctx); bad {
				return err
			}
			return real.UpdateJob(ctx, job)
		}
	case "Release":
		st.ReleaseFunc = func(ctx context.Context, jobID, owner string) error {
			if bad, err := inject(ctx); bad {
				return err
			}
			return real.Release(ctx, jobID, owner)
		}
	}
	return st
}

// heldUpstream answers once released; started gets each request as it arrives.
func heldUpstream(release <-chan struct{}, started chan<- string) *mock.Upstream {
	up := okUpstream()
	up.DoFunc = func(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
		started <- req.CustomID
		select {
		case <-release:
			return ok(req)
		case <-ctx.Done():
			return nil, &sluice.UpstreamError{Code: sluice.CodeTimeout, Err: ctx.Err()}
		}
	}
	return up
}

func TestStopDrainsAndStopAndCancelCutsOff(t *testing.T) {
	for _, tc := range []struct {
		name            string
		stop            func(*sluice.Run, context.Context) error
		wantDone        int64
		viaDrainContext bool
	}{
		{name: "Stop", stop: (*sluice.Run).Stop, wantDone: 4},
		{name: "StopAndCancel", stop: (*sluice.Run).StopAndCancel, wantDone: 0},
		{name: "WithDrain", wantDone: 4, viaDrainContext: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			job := newJob(t, st)
			release, started := make(chan struct{}), make(chan string, 100)
			cfg := fastConfig()
			cfg.Concurrency = 4
			eng, err := sluice.New(st, heldUpstream(release, started), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, drain := sluice.WithDrain(context.Background())
			run, err := eng.Start(ctx, job, requests(20))
			if err != nil {
				t.Fatal(err)
			}
			for range 4 { // the window is full
				<-started
			}
			stopped := make(chan error, 1)
			if tc.viaDrainContext {
				if n := drain(); n != 1 {
					t.Errorf("drain stopped %d runs, want 1", n)
				}
				close(stopped)
			} else {
				go func() { stopped <- tc.stop(run, context.Background()) }()
			}
			if tc.wantDone > 0 {
				// A drain waits for the requests in flight: Stop with a short deadline
				// returns the deadline's error and leaves the run stopping.
				short, cancel := context.WithCancel(context.Background())
				cancel()
				if err := run.Stop(short); !errors.Is(err, context.Canceled) {
					t.Errorf("Stop with a done context = %v, want context.Canceled", err)
				}
				close(release)
			}
			if err := <-stopped; err != nil {
				t.Errorf("%s = %v", tc.name, err)
			}
			if err := run.Wait(); !errors.Is(err, sluice.ErrInterrupted) {
				t.Fatalf("Wait = %v, want ErrInterrupted", err)
			}
			if tc.wantDone == 0 {
				close(release)
			}
			stats, _ := st.Stats(context.Background(), job.ID)
			if stats.Done != tc.wantDone || stats.Pending != 20-tc.wantDone || stats.Attempts != tc.wantDone {
				t.Errorf("done %d pending %d attempts %d, want %d, %d, %d", stats.Done, stats.Pending, stats.Attempts,
					tc.wantDone, 20-tc.wantDone, tc.wantDone)
			}
			if got, _ := st.Job(context.Background(), job.ID); got.State != sluice.JobInterrupted {
				t.Errorf("job state %s, want interrupted", got.State)
			}
		})
	}
}

// TestStopCausePrecedence: when stops race, the strongest cause wins: a ledger failure
// during a drain ends the job failed, not interrupted; and a stop after the run ended
// (a budget stop, here) changes nothing.
func TestStopCausePrecedence(t *testing.T) {
	t.Run("failure over drain", func(t *testing.T) {
		real := newStore(t)
		job := newJob(t, real)
		st := mock.Wrap(real)
		st.CompleteFunc = func(context.Context, string, string, []sluice.Outcome) error { return errDiskFull }
		release, started := make(chan struct{}), make(chan string, 100)
		cfg := fastConfig()
		cfg.Concurrency = 2
		eng, err := sluice.New(st, heldUpstream(release, started), cfg)
		if err != nil {
			t.Fatal(err)
		}
		run, err := eng.Start(context.Background(), job, requests(10))
		if err != nil {
			t.Fatal(err)
		}
		<-started
		<-started
		run.Drain() // the drain lets the two in flight finish; writing them fails
		close(release)
		if err := run.Wait(); !errors.Is(err, sluice.ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Wait = %v, want ErrFailed wrapping ENOSPC", err)
		}
		if got, _ := real.Job(context.Background(), job.ID); got.State != sluice.JobFailed {
			t.Errorf("job state %s, want failed", got.State)
		}
	})
	t.Run("stop after the end", func(t *testing.T) {
		st := newStore(t)
		job := newJob(t, st)
		cfg := fastConfig()
		cfg.Cost = perToken
		cfg.Budget = sluice.Budget{MaxTokens: 100} // 15 tokens a request at worst: 6 fit
		eng, err := sluice.New(st, okUpstream(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		run, err := eng.Start(ctx, job, requests(50))
		if err != nil {
			t.Fatal(err)
		}
		err = run.Wait()
		cancel()
		if !errors.Is(err, sluice.ErrBudgetExhausted) {
			t.Fatalf("Wait = %v, want ErrBudgetExhausted", err)
		}
		if err := run.StopAndCancel(context.Background()); err != nil { // after the end: harmless
			t.Errorf("StopAndCancel after the end = %v", err)
		}
		if got, _ := st.Job(context.Background(), job.ID); got.State != sluice.JobBudget {
			t.Errorf("job state %s, want %s", got.State, sluice.JobBudget)
		}
	})
}

// TestSavedReasonHasNoPackageName checks that the reason a stopped run saves in its job,
// which sluice show prints after "reason:", says what stopped it without the package's
// name that Wait's error carries ("sluice: API key rejected …").
func TestSavedReasonHasNoPackageName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		do     func(context.Context, *sluice.Request, int) (*sluice.Response, error)
		budget sluice.Budget
		state  sluice.JobState
		want   string // the start of the saved reason
	}{
		{"rejected key", func(context.Context, *sluice.Request, int) (*sluice.Response, error) {
			return fail(401, "invalid_api_key", "Incorrect API key provided.", 0)
		}, sluice.Budget{}, sluice.JobAborted, "API key rejected by http://fake.test/v1: Incorrect API key provided."},
		{"budget", func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) { return ok(req) },
			sluice.Budget{MaxTokens: 150}, sluice.JobBudget, "budget exhausted: used 150 of 150 tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			job := newJob(t, st)
			src := requests(40)
			for i := range src.lines {
				src.lines[i].Estimate.MaxOutputTokens = 5
			}
			cfg := fastConfig()
			cfg.Cost, cfg.Budget = perToken, tc.budget
			err := runJob(t, st, &fakeUpstream{do: tc.do}, cfg, job, src)
			if err == nil || !strings.HasPrefix(err.Error(), "sluice: ") {
				t.Errorf("Wait = %v, want an error that names sluice", err)
			}
			got, err := st.Job(context.Background(), job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.state || !strings.HasPrefix(got.Error, tc.want) {
				t.Errorf("job = %s %q, want %s %q…", got.State, got.Error, tc.state, tc.want)
			}
		})
	}
}
