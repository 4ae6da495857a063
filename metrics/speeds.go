package metrics

import (
	"slices"
	"sync"

	"github.com/sluice-llm/sluice"
)

// Percentiles are the nearest-rank 50th, 95th and 99th percentiles of some samples.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Speeds is a sluice.Observer that keeps the time to first token and the output speed of
// every answered attempt, for exact percentiles at the end of a run (the ledger keeps
// neither). It holds 8 bytes per answer. Safe for concurrent use; the zero value is
// ready.
type Speeds struct {
	mu   sync.Mutex
	ttft []float32 // milliseconds, streamed answers
	tps  []float32 // completion tokens per second
}

var _ sluice.Observer = (*Speeds)(nil)

// ObserveAttempt keeps an answered attempt's TTFT and output speed: sluice.Observer.
func (s *Speeds) ObserveAttempt(a *sluice.Attempt) {
	if a.Kind != sluice.AttemptOK {
		return
	}
	ttft := a.TTFT > 0
	tps := a.Latency > 0 && a.Usage.CompletionTokens > 0
	if !ttft && !tps {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ttft {
		s.ttft = append(s.ttft, float32(a.TTFT.Seconds()*1000))
	}
	if tps {
		s.tps = append(s.tps, float32(float64(a.Usage.CompletionTokens)/a.Latency.Seconds()))
	}
}

// TTFT returns the percentiles of the time to first token in milliseconds, and false
// when no answer was streamed.
func (s *Speeds) TTFT() (Percentiles, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return percentiles(s.ttft)
}

// TokensPerSecond returns the percentiles of answers' completion tokens over their
// duration, and false when no answer had completion tokens.
func (s *Speeds) TokensPerSecond() (Percentiles, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return percentiles(s.tps)
}

// percentiles sorts samples in place and reads the nearest-rank percentiles.
func percentiles(samples []float32) (Percentiles, bool) {
	n := len(samples)
	if n == 0 {
		return Percentiles{}, false
	}
	slices.Sort(samples)
	rank := func(p int) float64 { return float64(samples[max((p*n+99)/100, 1)-1]) }
	return Percentiles{P50: rank(50), P95: rank(95), P99: rank(99)}, true
}
