package estimate_test

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/estimate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFits(t *testing.T) {
	t.Parallel()
	// 1,000 prompt tokens and up to 3,000 output tokens, $0.40 online and $0.20 in a batch.
	rep := &estimate.Report{InputTokens: 1000, OutputTokensBound: 3000, CostUSD: estimate.USD{Online: 0.40, Batch: 0.20}}
	tests := []struct {
		name   string
		budget sluice.Budget
		batch  bool
		want   string // "" when it fits, else what the error says
	}{
		{name: "no cap", budget: sluice.Budget{}},
		{name: "tokens fit exactly", budget: sluice.Budget{MaxTokens: 4000}},
		{name: "tokens over", budget: sluice.Budget{MaxTokens: 3999}, want: "up to 4000 tokens, above the cap of 3999"},
		{name: "online cost over", budget: sluice.Budget{MaxCost: 0.30}, want: "up to $0.4000 online, above the cap of $0.3000"},
		{name: "batch cost fits", budget: sluice.Budget{MaxCost: 0.30}, batch: true},
		{name: "batch cost over", budget: sluice.Budget{MaxCost: 0.10}, batch: true, want: "through the Batch API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := rep.Fits(tt.budget, tt.batch)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Fits = %v, want nil", err)
			case tt.want != "" && (!errors.Is(err, estimate.ErrOverBudget) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Fits = %v, want ErrOverBudget saying %q", err, tt.want)
			case tt.want != "" && strings.Count(err.Error(), "over budget") != 1:
				t.Errorf("Fits = %v: says over budget more than once", err)
			}
		})
	}
}
