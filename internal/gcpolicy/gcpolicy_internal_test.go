package gcpolicy

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, Limit},
		{10 << 20, Limit},
		{24 << 20, Limit},
		{100 << 20, 216 << 20},
		{1 << 62, 1<<63 - 1},
	} {
		if got := LimitFor(tc.live); got != tc.want {
			t.Errorf("LimitFor(%d MiB) = %d MiB, want %d MiB", tc.live>>20, got>>20, tc.want>>20)
		}
	}
}

// TestLimitFollowsLiveHeap: with a live heap over Limit, the limit rises above twice it
// after a collection, so that the collector does not run all the time. With the fixed
// 64 MiB limit it stayed at 64 MiB under 96 MiB live.
func TestLimitFollowsLiveHeap(t *testing.T) {
	const live = 96 << 20
	defer debug.SetGCPercent(debug.SetGCPercent(Percent))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(Limit))
	adjusted := make(chan int64, 16)
	p := &policy{sample: samples(), adjusted: func(l int64) {
		select {
		case adjusted <- l:
		default:
		}
	}}
	p.arm()
	defer func() { p.mu.Lock(); p.stopped = true; p.mu.Unlock() }()
	hold := make([]byte, live)
	for i := range hold {
		hold[i] = 1 // in the live heap for real
	}
	timeout := time.After(30 * time.Second) // a failure, not a wait
	for {
		runtime.GC()
		select {
		case l := <-adjusted:
			if l >= 2*live {
				runtime.KeepAlive(hold)
				if got := debug.SetMemoryLimit(-1); got < 2*live {
					t.Fatalf("memory limit %d MiB, want ≥ %d MiB", got>>20, 2*live>>20)
				}
				return
			}
		case <-timeout:
			t.Fatalf("the limit did not follow a live heap of %d MiB: %d MiB", live>>20, debug.SetMemoryLimit(-1)>>20)
		}
	}
}
