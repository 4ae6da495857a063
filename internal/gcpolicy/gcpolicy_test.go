package gcpolicy_test

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/sluice-llm/sluice/internal/gcpolicy"
)

// settings reads the collector's GOGC and memory limit without changing them.
func settings() (percent int, limit int64) {
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1) // a negative limit reads it
}

func TestApplyAndRestore(t *testing.T) {
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(100) })

	restore := gcpolicy.Apply()
	if p, l := settings(); p != gcpolicy.Percent || l != gcpolicy.Limit {
		t.Errorf("applied: GOGC %d, limit %d; want %d, %d", p, l, gcpolicy.Percent, gcpolicy.Limit)
	}
	restore()
	if p, l := settings(); p != 150 || l != math.MaxInt64 {
		t.Errorf("restored: GOGC %d, limit %d; want 150, %d", p, l, int64(math.MaxInt64))
	}
}

func TestChosen(t *testing.T) {
	for _, tc := range []struct {
		name             string
		gogc, gomemlimit string
		want             bool
	}{
		{"neither set", "", "", false},
		{"GOGC set", "200", "", true},
		{"GOMEMLIMIT set", "", "1GiB", true},
		{"GOGC off", "off", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gcpolicy.Chosen(tc.gogc, tc.gomemlimit); got != tc.want {
				t.Errorf("Chosen(%q, %q) = %v, want %v", tc.gogc, tc.gomemlimit, got, tc.want)
			}
		})
	}
}
