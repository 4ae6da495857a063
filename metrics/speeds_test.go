package metrics_test

import (
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/metrics"
)

func TestSpeeds(t *testing.T) {
	var s metrics.Speeds
	if _, ok := s.TTFT(); ok {
		t.Error("TTFT of no answer")
	}
	for i := 1; i <= 100; i++ {
		s.ObserveAttempt(&sluice.Attempt{Kind: sluice.AttemptOK, TTFT: time.Duration(i) * time.Millisecond,
			Latency: time.Second, Usage: sluice.Usage{CompletionTokens: int64(i)}})
	}
	// Not answers: left out.
	s.ObserveAttempt(&sluice.Attempt{Kind: sluice.AttemptRetry, TTFT: time.Hour, Latency: time.Millisecond, Usage: sluice.Usage{CompletionTokens: 1e6}})
	ttft, ok := s.TTFT()
	if want := (metrics.Percentiles{P50: 50, P95: 95, P99: 99}); !ok || ttft != want {
		t.Errorf("TTFT = %+v, want %+v", ttft, want)
	}
	tps, ok := s.TokensPerSecond()
	if want := (metrics.Percentiles{P50: 50, P95: 95, P99: 99}); !ok || tps != want {
		t.Errorf("tokens/s = %+v, want %+v", tps, want)
	}
}
