package http

import (
	"context"

	"github.com/sluice-llm/sluice"
)

// BudgetPool returns the budget pool of the key with hash owner for the current period:
// the pool its batches spend from, so that an online gateway's requests spend from it
// too. nil when the key has no budget.
func (s *Server) BudgetPool(ctx context.Context, owner string) (*sluice.BudgetPool, error) {
	return s.budgetPool(ctx, owner, s.cfg.Now())
}
