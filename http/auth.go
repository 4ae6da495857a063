package http

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Authenticate returns the owner (the hash of the client key) of a request whose bearer
// key is one of the server's client keys, for handlers mounted beside the API (the
// dashboard); ok is false for any other request.
func (s *Server) Authenticate(r *http.Request) (owner string, ok bool) { return s.authenticate(r) }

// BatchIDs returns the ids of up to limit of owner's batches, newest first; a batch's job
// in the store has the batch's id.
func (s *Server) BatchIDs(ctx context.Context, owner string, limit int) ([]string, error) {
	docs, _, err := s.cfg.Store.ListObjects(ctx, kindBatch, owner, "", "", false, limit)
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		var b struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(d, &b); err != nil {
			return nil, fmt.Errorf("list batches: %w", err)
		}
		ids = append(ids, b.ID)
	}
	return ids, nil
}
