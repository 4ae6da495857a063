package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/sluice-llm/sluice"
)

const (
	defaultBatchLimit = 20
	maxBatchLimit     = 100
)

// createBatch serves POST /v1/batches: it checks the request, stores the batch as
// validating and hands it to its lifecycle goroutine.
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request, owner string) error {
	var req createBatchRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	window, err := s.checkCreate(&req)
	if err != nil {
		return err
	}
	in, err := s.file(r.Context(), req.InputFileID, owner)
	if err != nil {
		return err
	}
	if in.Purpose != sluice.PurposeBatch {
		return invalid("input_file_id", "The input file must have purpose 'batch', got '%s'.", in.Purpose)
	}
	if err := s.checkQuota(r.Context(), owner); err != nil {
		return err
	}
	created := now()
	rec := &batchRecord{
		Batch: sluice.Batch{
			ID:               newBatchID(),
			Object:           "batch",
			Endpoint:         req.Endpoint,
			InputFileID:      in.ID,
			CompletionWindow: req.CompletionWindow,
			Status:           sluice.BatchValidating,
			CreatedAt:        created,
			ExpiresAt:        ptr(time.Unix(created, 0).Add(window).Unix()),
			Metadata:         req.Metadata,
		},
		Owner:     owner,
		CountedAt: s.cfg.Now().Unix(),
	}
	if err := s.start(r.Context(), rec); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec.Batch)
	return nil
}

// checkCreate checks a create request and returns its completion window.
func (s *Server) checkCreate(req *createBatchRequest) (time.Duration, error) {
	if req.InputFileID == "" {
		return 0, invalid("input_file_id", "Missing required parameter: 'input_file_id'.")
	}
	if !slices.Contains(sluice.Endpoints, req.Endpoint) {
		return 0, invalid("endpoint", "Invalid endpoint '%s': sluice runs batches for %v.", req.Endpoint, sluice.Endpoints)
	}
	if len(req.Metadata) > 16 {
		return 0, invalid("metadata", "metadata may hold at most 16 pairs, got %d.", len(req.Metadata))
	}
	for k, v := range req.Metadata {
		if utf8.RuneCountInString(k) > 64 || utf8.RuneCountInString(v) > 512 {
			return 0, invalid("metadata", "metadata keys may be at most 64 characters and values at most 512.")
		}
	}
	if u, ok := req.Metadata[WebhookMetadataKey]; ok {
		if !s.cfg.BatchWebhooks {
			return 0, invalid("metadata", "metadata %s: this server does not take webhooks from clients (its operator can allow them with --batch-webhooks).", WebhookMetadataKey)
		}
		if err := checkWebhookURL(u, s.cfg.WebhookAllow); err != nil {
			return 0, invalid("metadata", "metadata %s: %v.", WebhookMetadataKey, err)
		}
	}
	if req.CompletionWindow == CompletionWindow {
		return 24 * time.Hour, nil
	}
	if s.cfg.AnyCompletionWindow {
		if d, err := time.ParseDuration(req.CompletionWindow); err == nil && d > 0 {
			return d, nil
		}
		return 0, invalid("completion_window", "completion_window must be '24h' or a positive duration, got '%s'.", req.CompletionWindow)
	}
	return 0, invalid("completion_window", "Invalid completion_window '%s': only '24h' is supported.", req.CompletionWindow)
}

// batch returns owner's batch with id (any owner's when owner is ""), or a 404.
func (s *Server) batch(ctx context.Context, id, owner string) (*batchRecord, error) {
	doc, err := s.cfg.Store.Object(ctx, kindBatch, id, owner)
	if errors.Is(err, sluice.ErrNotFound) {
		return nil, notFound("batch", id)
	}
	if err != nil {
		return nil, err
	}
	rec, err := decodeRecord[batchRecord](doc)
	if err != nil {
		return nil, fmt.Errorf("batch %s: %w", id, err)
	}
	return rec, nil
}

func (s *Server) saveBatch(ctx context.Context, rec *batchRecord) error {
	doc, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("save batch: %w", err)
	}
	return s.cfg.Store.SaveObject(ctx, kindBatch, rec.ID, rec.Owner, string(rec.Status), doc)
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request, owner string) error {
	rec, err := s.batch(r.Context(), r.PathValue("id"), owner)
	if err != nil {
		return err
	}
	s.liveCounts(rec)
	writeJSON(w, http.StatusOK, rec.Batch)
	return nil
}

// listBatches serves GET /v1/batches: newest first (order=asc: oldest first), with
// after/limit pagination.
func (s *Server) listBatches(w http.ResponseWriter, r *http.Request, owner string) error {
	q, err := parseListQuery(r, defaultBatchLimit, maxBatchLimit)
	if err != nil {
		return err
	}
	docs, more, err := s.cfg.Store.ListObjects(r.Context(), kindBatch, owner, q.after, "", q.asc, q.limit)
	if errors.Is(err, sluice.ErrNotFound) {
		return invalid("after", "No batch found with id '%s'.", q.after)
	}
	if err != nil {
		return err
	}
	out := list[sluice.Batch]{Object: "list", Data: make([]sluice.Batch, 0, len(docs)), HasMore: more}
	for _, doc := range docs {
		rec, err := decodeRecord[batchRecord](doc)
		if err != nil {
			return err
		}
		s.liveCounts(rec)
		out.Data = append(out.Data, rec.Batch)
	}
	if n := len(out.Data); n > 0 {
		out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[n-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// cancelBatch serves POST /v1/batches/{id}/cancel: the batch is cancelling until its run
// has drained and what finished is written, then cancelled.
func (s *Server) cancelBatch(w http.ResponseWriter, r *http.Request, owner string) error {
	rec, err := s.requestCancel(r.Context(), r.PathValue("id"), owner)
	if err != nil {
		return err
	}
	s.liveCounts(rec)
	writeJSON(w, http.StatusOK, rec.Batch)
	return nil
}
