package ui

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

// fakeTimeline is a TimelineStore of one job's buckets that records the since of each
// Timeline call.
type fakeTimeline struct {
	sluice.TimelineStore
	buckets []sluice.TimelineBucket
	sinces  []time.Time
}

func (f *fakeTimeline) Timeline(_ context.Context, _ string, since time.Time) ([]sluice.TimelineBucket, error) {
	f.sinces = append(f.sinces, since)
	var out []sluice.TimelineBucket
	for _, b := range f.buckets {
		if !b.Start.Before(since) {
			out = append(out, b)
		}
	}
	return out, nil
}

var t0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

func second(i int, completed int64) sluice.TimelineBucket {
	return sluice.TimelineBucket{Start: t0.Add(time.Duration(i) * time.Second), Width: time.Second, Completed: completed}
}

func total(bs []sluice.TimelineBucket) (n int64) {
	for _, b := range bs {
		n += b.Completed
	}
	return n
}

// TestRefreshReadsOnlyTheTail: after the first read, a refresh asks for the buckets from
// the newest one seen (which may have grown) on, never the whole timeline again.
func TestRefreshReadsOnlyTheTail(t *testing.T) {
	f := &fakeTimeline{}
	for i := range 10 {
		f.buckets = append(f.buckets, second(i, 1))
	}
	c := &timelineCache{maxKeep: 300}
	if err := c.refresh(t.Context(), f, "j"); err != nil {
		t.Fatal(err)
	}
	f.buckets[9].Completed = 5 // the newest bucket grew
	f.buckets = append(f.buckets, second(10, 2))
	if err := c.refresh(t.Context(), f, "j"); err != nil {
		t.Fatal(err)
	}
	if got := f.sinces; len(got) != 2 || !got[0].IsZero() || !got[1].Equal(t0.Add(9*time.Second)) {
		t.Errorf("reads since %v, want the zero time then t0+9s", got)
	}
	if got := total(c.all()); got != 9+5+2 {
		t.Errorf("cached timeline totals %d completed, want 16", got)
	}
}

// TestCoarsenKeepsTotals: a long timeline is merged into wider buckets, within bounds,
// and nothing is lost.
func TestCoarsenKeepsTotals(t *testing.T) {
	f := &fakeTimeline{}
	for i := range 1000 {
		f.buckets = append(f.buckets, second(i, int64(i%7)))
	}
	c := &timelineCache{maxKeep: 100}
	if err := c.refresh(t.Context(), f, "j"); err != nil {
		t.Fatal(err)
	}
	all := c.all()
	if len(all) > 201 {
		t.Errorf("%d buckets kept, want at most 2×100+1", len(all))
	}
	if got, want := total(all), total(f.buckets); got != want {
		t.Errorf("coarsened timeline totals %d, want %d", got, want)
	}
	ds := downsample(all, 50)
	if len(ds) > 50 || total(ds) != total(f.buckets) {
		t.Errorf("downsampled to %d buckets totalling %d", len(ds), total(ds))
	}
	for i := 1; i < len(ds); i++ {
		if !ds[i].Start.After(ds[i-1].Start) {
			t.Fatalf("downsampled buckets out of order at %d", i)
		}
	}
}

func TestChartRatesAndGaps(t *testing.T) {
	b := second(0, 4)
	b.Width = 2 * time.Second
	b.Errors = map[string]int64{"429": 2}
	b.Latency = sluice.Histogram{}.Add(100 * time.Millisecond)
	b.Cost = 0.5
	next := second(2, 0)
	next.Cost = 0.25
	next.Sample = &sluice.RunSample{RPM: 600, BreakerOpen: true}
	d := chart([]sluice.TimelineBucket{b, next})
	if *d.Done[0] != 2 || *d.Errors["429"][0] != 1 || d.P50[1] != nil || *d.Cost[1] != 0.75 {
		t.Errorf("chart: done %v, 429 %v, p50 %v, cost %v", *d.Done[0], *d.Errors["429"][0], d.P50[1], *d.Cost[1])
	}
	if d.RPM[0] != nil || *d.RPM[1] != 600 || *d.Breaker[1] != 1 || !d.HasSamples || d.TPM[1] != nil {
		t.Errorf("chart samples: rpm %v %v, breaker %v, tpm %v", d.RPM[0], d.RPM[1], d.Breaker[1], d.TPM[1])
	}
}
