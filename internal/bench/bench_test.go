package bench

import (
	"context"
	"errors"
	"os"
	"testing"
)

func TestPickUnknown(t *testing.T) {
	if _, err := Pick([]string{"overhead", "nope"}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Pick of an unknown name: %v, want ErrUnknown", err)
	}
	got, err := Pick([]string{"wire", "faults"})
	if err != nil || len(got) != 2 || got[0].Name != "wire" || got[1].Name != "faults" {
		t.Fatalf("Pick(wire, faults) = %v, %v", got, err)
	}
}

// The wire scenario, small: the simulator in a process of its own, the three clients in
// turn, every figure measured and sluice's answers each its own.
func TestWire(t *testing.T) {
	sc, err := Pick([]string{"wire"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc[0], Options{Dir: t.TempDir(), Requests: 300, Exe: os.Args[0]})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Exact || r.Requests != 300 {
		t.Errorf("sluice's answers: %d requests, exactly once with its own answer: %v", r.Requests, r.Exact)
	}
	if r.Throughput <= 0 || r.NaiveRPS <= 0 || r.BareRPS <= 0 {
		t.Errorf("rates not measured: sluice %.0f, naive %.0f, bare %.0f", r.Throughput, r.NaiveRPS, r.BareRPS)
	}
	if r.Verdict == "" {
		t.Error("no verdict")
	}
}

func TestSimProcessThatDoesNotStart(t *testing.T) {
	if _, err := startSimProcess(context.Background(), os.Args[0], "--bogus"); err == nil {
		t.Fatal("a simulator that did not say where it listens was taken as started")
	}
}
