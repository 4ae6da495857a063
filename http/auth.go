package http

import (
	"context"
	"net/http"

	"github.com/sluice-llm/sluice/service"
)

// Authenticate returns the tenant (the hash of the client key) of a request whose bearer
// key is one of the service's client keys, for handlers mounted beside the API (the
// dashboard); ok is false for any other request. Service().Authenticate also tells
// admin keys.
func (s *Server) Authenticate(r *http.Request) (tenant string, ok bool) {
	key, found := bearer(r)
	if !found {
		return "", false
	}
	tenant, client, _ := s.svc.Authenticate(key)
	return tenant, client
}

// BatchIDs returns the ids of up to limit (1 to service.MaxBatchLimit) of tenant's
// batches, newest first; a batch's job in the store has the batch's id.
func (s *Server) BatchIDs(ctx context.Context, tenant string, limit int) ([]string, error) {
	page, err := s.svc.ListBatches(ctx, tenant, service.ListParams{Limit: limit})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(page.Data))
	for _, b := range page.Data {
		ids = append(ids, b.ID)
	}
	return ids, nil
}
