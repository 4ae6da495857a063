package ingest

import (
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
)

// validOnly is an Estimator whose Estimate fails, to tell which method Source calls.
type validOnly struct{ calls int }

func (v *validOnly) Estimate(*sluice.Request) (sluice.Estimate, error) {
	panic("Estimate called: Source must call EstimateValid for a line ParseRequest accepted")
}

func (v *validOnly) EstimateValid(req *sluice.Request) (sluice.Estimate, error) {
	v.calls++
	return sluice.Estimate{Model: "m", PromptTokens: int64(len(req.Body))}, nil
}

// TestSourceEstimateValid checks that Source estimates a line it has checked with
// EstimateValid when the Estimator has it, so that the body's JSON is not checked again.
func TestSourceEstimateValid(t *testing.T) {
	est := &validOnly{}
	s := NewSource(strings.NewReader(twoLines), est)
	for range 2 {
		r, err := s.Next()
		if err != nil || r.Err != nil {
			t.Fatalf("Next = %+v, %v", r, err)
		}
		if r.Estimate.Model != "m" || r.Estimate.PromptTokens != int64(len(r.Request.Body)) {
			t.Errorf("estimate = %+v, want EstimateValid's", r.Estimate)
		}
	}
	if est.calls != 2 {
		t.Errorf("EstimateValid called %d times, want 2", est.calls)
	}
}
