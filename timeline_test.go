package sluice_test

import (
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

func TestHistogramQuantileWithinABin(t *testing.T) {
	var h sluice.Histogram
	for i := 1; i <= 1000; i++ {
		h = h.Add(time.Duration(i) * time.Millisecond) // 1ms … 1s, uniform
	}
	if h.Count() != 1000 {
		t.Fatalf("count %d", h.Count())
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.95, 950 * time.Millisecond}, {0.99, 990 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if r := float64(got) / float64(tc.want); r < 1/1.19 || r > 1.19 {
			t.Errorf("q%.2f = %s, want %s within a bin (19%%)", tc.q, got, tc.want)
		}
	}
	if got := (sluice.Histogram{}).Quantile(0.5); got != 0 {
		t.Errorf("empty histogram's median = %s, want 0", got)
	}
	long := sluice.Histogram{}.Add(24 * time.Hour)
	if len(long) != sluice.HistogramBins || long.Quantile(1) != sluice.HistogramBound(sluice.HistogramBins-1) {
		t.Errorf("a day falls in bin %d (quantile %s), want the last", len(long)-1, long.Quantile(1))
	}
}

func TestHistogramBinsMeetAtBounds(t *testing.T) {
	for i := 1; i < 40; i++ {
		b := sluice.HistogramBound(i)
		if n := len(sluice.Histogram{}.Add(b)); n != i+1 {
			t.Errorf("bound of bin %d (%s) falls in bin %d", i, b, n-1)
		}
		if n := len(sluice.Histogram{}.Add(b + 1)); n != i+2 {
			t.Errorf("just above bin %d's bound falls in bin %d", i, n-1)
		}
	}
}

func TestTimelineBucketMergeKeepsTheLaterSample(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := sluice.TimelineBucket{Completed: 1, Errors: map[string]int64{"429": 1}, Sample: &sluice.RunSample{At: t0.Add(time.Second), Done: 5}}
	b := sluice.TimelineBucket{Completed: 2, Errors: map[string]int64{"429": 2, "500": 1}, Sample: &sluice.RunSample{At: t0, Done: 3}}
	a.Merge(&b)
	if a.Completed != 3 || a.Errors["429"] != 3 || a.Errors["500"] != 1 || a.Sample.Done != 5 {
		t.Errorf("merged = %+v, sample %+v", a, a.Sample)
	}
	var empty sluice.TimelineBucket
	empty.Merge(&b)
	if empty.Sample == nil || empty.Sample == b.Sample || empty.Sample.Done != 3 {
		t.Errorf("merging into an empty bucket: sample %+v, want a copy of b's", empty.Sample)
	}
}
