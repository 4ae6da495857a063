package sluice_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/mock"
)

// TestStoreErrorSaidOnce: a store failure reaches the caller with each operation named
// once. The store names its operation ("claim requests: ..."); before the fix the engine
// named it again ("claim requests: claim requests: sql: database is closed", "update job:
// update job ID: ...").
func TestStoreErrorSaidOnce(t *testing.T) {
	tests := []struct {
		name   string
		op     string // what the error must say once
		ingest bool   // the run reads its input (else it is in the ledger already)
		break_ func(st *mock.Store, broken sluice.Store)
	}{
		{name: "claim", op: "claim requests", break_: func(st *mock.Store, broken sluice.Store) {
			st.ClaimFunc = func(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
				return broken.Claim(ctx, p)
			}
		}},
		{name: "update job after ingest", op: "update job", ingest: true, break_: func(st *mock.Store, broken sluice.Store) {
			st.UpdateJobFunc = broken.UpdateJob
		}},
		{name: "release", op: "release requests", break_: func(st *mock.Store, broken sluice.Store) {
			st.ReleaseFunc = broken.Release
		}},
		{name: "unfinished", op: "unfinished requests", break_: func(st *mock.Store, broken sluice.Store) {
			st.UnfinishedFunc = broken.Unfinished
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			real := newStore(t)
			job := newJob(t, real)
			var src sluice.Source
			if tt.ingest {
				src = requests(10)
			} else {
				if err := real.AddRequests(context.Background(), job.ID, requests(10).lines); err != nil {
					t.Fatal(err)
				}
				job.Ingested, job.IngestDone = 10, true
			}
			broken := newStore(t) // the real store's own errors, from a closed database
			if err := broken.Close(); err != nil {
				t.Fatal(err)
			}
			st := mock.Wrap(real)
			tt.break_(st, broken)
			eng, err := sluice.New(st, okUpstream(), fastConfig())
			if err != nil {
				t.Fatal(err)
			}
			run, err := eng.Start(context.Background(), job, src)
			if err != nil {
				t.Fatal(err)
			}
			err = run.Wait()
			if !errors.Is(err, sluice.ErrFailed) {
				t.Fatalf("run error = %v, want ErrFailed", err)
			}
			// A failure that also fails the job's last update is two errors, a line each.
			if n := strings.Count(err.Error(), "sluice:"); n != 1 {
				t.Errorf("run error %q says sluice: %d times, want once", err, n)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if n := strings.Count(line, tt.op); n != 1 {
					t.Errorf("run error line %q says %q %d times, want once", line, tt.op, n)
				}
			}
		})
	}
}

// TestAbortSaidOnce: a run aborted by a rejected key is ErrAborted and ErrAuth, and its
// message names the package once (it said "sluice: run aborted: sluice: API key …").
func TestAbortSaidOnce(t *testing.T) {
	st := newStore(t)
	job := newJob(t, st)
	up := &mock.Upstream{
		DoFunc: func(context.Context, *sluice.Request) (*sluice.Response, error) {
			return fail(401, "invalid_api_key", "bad key", 0)
		},
		ModelsFunc: func(context.Context) ([]string, error) { return nil, nil },
	}
	err := runJob(t, st, up, fastConfig(), job, requests(3))
	if !errors.Is(err, sluice.ErrAborted) || !errors.Is(err, sluice.ErrAuth) {
		t.Fatalf("run error = %v, want ErrAborted and ErrAuth", err)
	}
	if n := strings.Count(err.Error(), "sluice:"); n != 1 || !strings.Contains(err.Error(), "API key rejected") || !strings.Contains(err.Error(), "bad key") {
		t.Errorf("run error %q: want the rejected key and its message, prefixed once", err)
	}
}
