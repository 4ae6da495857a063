package batch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
)

// The requests with no result are listed in line order with where each is: in a part,
// by its number and phase, or pending for the next round.
func TestMissingRequests(t *testing.T) {
	p := startProvider(t, providerOpts{maxLines: 2})
	c := newClient(t, requests("slow-", "gpt-4o-mini", 3))
	r := newRunner(t, c.st, p.api, batch.Config{MaxLines: 2})
	ctx := context.Background()
	missing, err := batch.MissingRequests(ctx, c.st, c.job.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := func(line int64, where string) batch.Missing {
		return batch.Missing{Line: line, CustomID: fmt.Sprintf("slow-%03d", line-1), Where: where}
	}
	want := []batch.Missing{m(1, "pending"), m(2, "pending"), m(3, "pending")}
	if diff := cmp.Diff(want, missing); diff != "" {
		t.Errorf("before a submit (-want +got):\n%s", diff)
	}
	prog := stepUntil(t, r, c.job, true, func(p *batch.Progress) bool {
		return len(p.Parts) == 2 && p.Parts[0].BatchID != "" && p.Parts[1].BatchID != ""
	})
	if missing, err = batch.MissingRequests(ctx, c.st, c.job.ID, prog.Parts); err != nil {
		t.Fatal(err)
	}
	in := func(p *sluice.Part) string { return fmt.Sprintf("part %d (%s)", p.Number, batch.Phase(p)) }
	want = []batch.Missing{m(1, in(prog.Parts[0])), m(2, in(prog.Parts[0])), m(3, in(prog.Parts[1]))}
	if diff := cmp.Diff(want, missing); diff != "" {
		t.Errorf("in batches (-want +got):\n%s", diff)
	}
}

func TestPhase(t *testing.T) {
	for _, tc := range []struct {
		part sluice.Part
		want string
	}{
		{sluice.Part{}, "preparing"},
		{sluice.Part{FileID: "file-1"}, "uploaded"},
		{sluice.Part{FileID: "file-1", BatchID: "batch_1", Status: sluice.BatchInProgress}, "in_progress"},
		{sluice.Part{FileID: "file-1", BatchID: "batch_1", Status: sluice.BatchCompleted, Collected: true}, "collected"},
	} {
		if got := batch.Phase(&tc.part); got != tc.want {
			t.Errorf("Phase(%+v) = %q, want %q", tc.part, got, tc.want)
		}
	}
}

// A rate is completed by what an earlier run learned only where the flags left it
// unknown, and says where each figure comes from.
func TestRateLearned(t *testing.T) {
	obs := &sluice.RateObservation{RPM: 500, TPM: 90000, Latency: 800 * time.Millisecond, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)}
	for _, tc := range []struct {
		name   string
		given  batch.Rate
		obs    *sluice.RateObservation
		want   batch.Rate
		source string
	}{
		{"nothing known", batch.Rate{Concurrency: 8}, nil, batch.Rate{Concurrency: 8, Latency: batch.DefaultLatency},
			"8 in flight, 5s per request, from an assumed latency of 5s"},
		{"learned", batch.Rate{Concurrency: 8}, obs, batch.Rate{Concurrency: 8, RPM: 500, TPM: 90000, Latency: 800 * time.Millisecond},
			"8 in flight, 500 RPM, 90000 TPM, 800ms per request, from a run of 2026-01-02 03:04:05"},
		{"flags first", batch.Rate{Concurrency: 8, RPM: 60}, obs, batch.Rate{Concurrency: 8, RPM: 60, TPM: 90000, Latency: 800 * time.Millisecond},
			"8 in flight, 60 RPM, 90000 TPM, 800ms per request, from the flags given and a run of 2026-01-02 03:04:05"},
		{"flags only", batch.Rate{Concurrency: 8, Latency: time.Second}, &sluice.RateObservation{Latency: time.Minute}, batch.Rate{Concurrency: 8, Latency: time.Second},
			"8 in flight, 1s per request, from the flags given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, source := tc.given.Learned(tc.obs)
			if got != tc.want || source != tc.source {
				t.Errorf("Learned = %+v, %q; want %+v, %q", got, source, tc.want, tc.source)
			}
		})
	}
}
