package storetest

import (
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

// RateStore keeps what runs learned of each upstream's speed (the rate limits its headers
// gave, the median latency), by base URL. The rate scenarios run on stores that implement
// it and are skipped on others.
type RateStore = sluice.RateStore

var rateScenarios = []scenario{
	{"RateKeepsLimitsNotRelearned", testRateKeepsLimitsNotRelearned},
}

func testRateKeepsLimitsNotRelearned(t *testing.T, st sluice.Store) {
	rs, ok := st.(RateStore)
	if !ok {
		t.Skipf("%T does not implement storetest.RateStore", st)
	}
	ctx := t.Context()
	const base = "https://api.example.com/v1"
	if _, ok, err := rs.Rate(ctx, base); ok || err != nil {
		t.Fatalf("a rate before any run: %v, %v", ok, err)
	}
	at := time.Unix(1_800_000_000, 0)
	if err := rs.SaveRate(ctx, base, sluice.RateObservation{RPM: 500, TPM: 200_000, Latency: 800 * time.Millisecond, At: at}); err != nil {
		t.Fatal(err)
	}
	// A run that learned no limits (no headers) keeps the limits learned before.
	if err := rs.SaveRate(ctx, base, sluice.RateObservation{Latency: time.Second, At: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := rs.Rate(ctx, base)
	want := sluice.RateObservation{RPM: 500, TPM: 200_000, Latency: time.Second, At: at.Add(time.Hour)}
	if !ok || err != nil || got.RPM != want.RPM || got.TPM != want.TPM || got.Latency != want.Latency || !got.At.Equal(want.At) {
		t.Errorf("Rate = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	// A run that learned new limits replaces them.
	if err := rs.SaveRate(ctx, base, sluice.RateObservation{RPM: 60.5, At: at.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := rs.Rate(ctx, base); got.RPM != 60.5 || got.TPM != 200_000 || got.Latency != time.Second {
		t.Errorf("after a new RPM: %+v, want RPM 60.5 and the rest kept", got)
	}
	if _, ok, _ := rs.Rate(ctx, "http://other/v1"); ok {
		t.Error("another upstream has a rate")
	}
}
