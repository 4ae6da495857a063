package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

func TestRateObservations(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const base = "https://api.example.com/v1"
	if _, ok, err := st.Rate(ctx, base); ok || err != nil {
		t.Fatalf("a rate before any run: %v, %v", ok, err)
	}
	at := time.Unix(1_800_000_000, 0)
	if err := st.SaveRate(ctx, base, sluice.RateObservation{RPM: 500, TPM: 200_000, Latency: 800 * time.Millisecond, At: at}); err != nil {
		t.Fatal(err)
	}
	// A run that learned no limits (no headers) keeps the limits learned before.
	if err := st.SaveRate(ctx, base, sluice.RateObservation{Latency: time.Second, At: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := st.Rate(ctx, base)
	want := sluice.RateObservation{RPM: 500, TPM: 200_000, Latency: time.Second, At: at.Add(time.Hour)}
	if !ok || err != nil || got.RPM != want.RPM || got.TPM != want.TPM || got.Latency != want.Latency || !got.At.Equal(want.At) {
		t.Errorf("Rate = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if _, ok, _ := st.Rate(ctx, "http://other/v1"); ok {
		t.Error("another upstream has a rate")
	}
}
