package http

import (
	"net/http"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
)

// createBatchRequest is the body of POST /v1/batches.
type createBatchRequest struct {
	InputFileID      string            `json:"input_file_id"`
	Endpoint         string            `json:"endpoint"`
	CompletionWindow string            `json:"completion_window"`
	Metadata         map[string]string `json:"metadata"`
}

// createBatch serves POST /v1/batches.
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request, tenant string) error {
	var req createBatchRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	b, err := s.svc.CreateBatch(r.Context(), tenant, service.CreateBatchParams(req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request, tenant string) error {
	b, err := s.svc.Batch(r.Context(), tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// listBatches serves GET /v1/batches: newest first (order=asc: oldest first), with
// after/limit pagination.
func (s *Server) listBatches(w http.ResponseWriter, r *http.Request, tenant string) error {
	p, err := parseListQuery(r, service.MaxBatchLimit)
	if err != nil {
		return err
	}
	page, err := s.svc.ListBatches(r.Context(), tenant, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(page, func(b sluice.Batch) string { return b.ID }))
	return nil
}

// cancelBatch serves POST /v1/batches/{id}/cancel: the batch is cancelling until its run
// has drained and what finished is written, then cancelled.
func (s *Server) cancelBatch(w http.ResponseWriter, r *http.Request, tenant string) error {
	b, err := s.svc.CancelBatch(r.Context(), tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// getUsage serves GET /v1/usage.
func (s *Server) getUsage(w http.ResponseWriter, r *http.Request, tenant string) error {
	u, err := s.svc.Usage(r.Context(), tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}
