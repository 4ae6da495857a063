package http

import (
	"context"

	"github.com/sluice-llm/sluice"
)

// BudgetPool returns the budget pool of the key with hash tenant for the current period
// (service.Service.BudgetPool), so that an online gateway's requests spend from the pool
// the key's batches spend from. nil when the key has no budget.
func (s *Server) BudgetPool(ctx context.Context, tenant string) (*sluice.BudgetPool, error) {
	return s.svc.BudgetPool(ctx, tenant)
}
