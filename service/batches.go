package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/sluice-llm/sluice"
)

// Batch list sizes.
const (
	// DefaultBatchLimit is how many batches a list returns when no limit is given.
	DefaultBatchLimit = 20
	// MaxBatchLimit is the most batches one list returns.
	MaxBatchLimit = 100
)

// CreateBatch checks the request, stores the batch as validating and starts its
// lifecycle: it is validated, run, and its output and error files written, while the
// caller polls Batch. A tenant whose budget for the period is spent gets EQUOTA.
func (s *Service) CreateBatch(ctx context.Context, tenant string, p CreateBatchParams) (*sluice.Batch, error) {
	window, err := s.checkCreate(&p)
	if err != nil {
		return nil, err
	}
	in, err := s.file(ctx, p.InputFileID, tenant)
	if err != nil {
		return nil, err
	}
	if in.Purpose != sluice.PurposeBatch {
		return nil, invalid("input_file_id", "The input file must have purpose 'batch', got '%s'.", in.Purpose)
	}
	if err := s.checkQuota(ctx, tenant); err != nil {
		return nil, err
	}
	created := s.now()
	rec := &batchRecord{
		Batch: sluice.Batch{
			ID:               newBatchID(),
			Object:           "batch",
			Endpoint:         p.Endpoint,
			InputFileID:      in.ID,
			CompletionWindow: p.CompletionWindow,
			Status:           sluice.BatchValidating,
			CreatedAt:        created,
			ExpiresAt:        ptr(time.Unix(created, 0).Add(window).Unix()),
			Metadata:         p.Metadata,
		},
		Tenant:    tenant,
		CountedAt: s.cfg.Now().Unix(),
	}
	if err := s.start(ctx, rec); err != nil {
		return nil, err
	}
	return &rec.Batch, nil
}

// checkCreate checks a create request and returns its completion window.
func (s *Service) checkCreate(p *CreateBatchParams) (time.Duration, error) {
	if p.InputFileID == "" {
		return 0, invalid("input_file_id", "Missing required parameter: 'input_file_id'.")
	}
	if !slices.Contains(sluice.Endpoints, p.Endpoint) {
		return 0, invalid("endpoint", "Invalid endpoint '%s': sluice runs batches for %v.", p.Endpoint, sluice.Endpoints)
	}
	if len(p.Metadata) > 16 {
		return 0, invalid("metadata", "metadata may hold at most 16 pairs, got %d.", len(p.Metadata))
	}
	for k, v := range p.Metadata {
		if utf8.RuneCountInString(k) > 64 || utf8.RuneCountInString(v) > 512 {
			return 0, invalid("metadata", "metadata keys may be at most 64 characters and values at most 512.")
		}
	}
	if u, ok := p.Metadata[WebhookMetadataKey]; ok {
		if !s.cfg.BatchWebhooks {
			return 0, invalid("metadata", "metadata %s: this server does not take webhooks from clients (its operator can allow them with --batch-webhooks).", WebhookMetadataKey)
		}
		if err := checkWebhookURL(u, s.cfg.WebhookAllow); err != nil {
			return 0, invalid("metadata", "metadata %s: %v.", WebhookMetadataKey, err)
		}
	}
	if p.CompletionWindow == CompletionWindow {
		return 24 * time.Hour, nil
	}
	if s.cfg.AnyCompletionWindow {
		if d, err := time.ParseDuration(p.CompletionWindow); err == nil && d > 0 {
			return d, nil
		}
		return 0, invalid("completion_window", "completion_window must be '24h' or a positive duration, got '%s'.", p.CompletionWindow)
	}
	return 0, invalid("completion_window", "Invalid completion_window '%s': only '24h' is supported.", p.CompletionWindow)
}

// batch returns tenant's batch with id (any tenant's when tenant is ""), or ENOTFOUND.
func (s *Service) batch(ctx context.Context, id, tenant string) (*batchRecord, error) {
	doc, err := s.cfg.Store.Object(ctx, kindBatch, id, tenant)
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

func (s *Service) saveBatch(ctx context.Context, rec *batchRecord) error {
	doc, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("save batch: %w", err)
	}
	return s.cfg.Store.SaveObject(ctx, kindBatch, rec.ID, rec.Tenant, string(rec.Status), doc)
}

// swapBatch saves rec while the stored batch's status is still was, and reports whether
// it did.
func (s *Service) swapBatch(ctx context.Context, rec *batchRecord, was sluice.BatchStatus) (bool, error) {
	doc, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("save batch: %w", err)
	}
	return s.cfg.Store.SwapObject(ctx, kindBatch, rec.ID, string(was), string(rec.Status), doc)
}

// Batch returns tenant's batch with id, with the live request counts of a running one,
// or ENOTFOUND.
func (s *Service) Batch(ctx context.Context, tenant, id string) (*sluice.Batch, error) {
	if tenant == "" {
		return nil, notFound("batch", id)
	}
	rec, err := s.batch(ctx, id, tenant)
	if err != nil {
		return nil, err
	}
	s.liveCounts(rec)
	return &rec.Batch, nil
}

// ListBatches returns a page of tenant's batches, newest first (p.Asc: oldest first).
// An After that names no batch of the tenant's is EINVALID.
func (s *Service) ListBatches(ctx context.Context, tenant string, p ListParams) (*Page[sluice.Batch], error) {
	limit, err := listLimit(p.Limit, DefaultBatchLimit, MaxBatchLimit)
	if err != nil {
		return nil, err
	}
	docs, more, err := s.cfg.Store.ListObjects(ctx, kindBatch, tenant, p.After, "", p.Asc, limit)
	if errors.Is(err, sluice.ErrNotFound) {
		return nil, invalid("after", "No batch found with id '%s'.", p.After)
	}
	if err != nil {
		return nil, err
	}
	out := &Page[sluice.Batch]{Data: make([]sluice.Batch, 0, len(docs)), HasMore: more}
	for _, doc := range docs {
		rec, err := decodeRecord[batchRecord](doc)
		if err != nil {
			return nil, err
		}
		s.liveCounts(rec)
		out.Data = append(out.Data, rec.Batch)
	}
	return out, nil
}

// CancelBatch moves tenant's batch to cancelling: its run drains, what finished is
// written, and it is cancelled. A batch that is already final is ECONFLICT.
func (s *Service) CancelBatch(ctx context.Context, tenant, id string) (*sluice.Batch, error) {
	if tenant == "" {
		return nil, notFound("batch", id)
	}
	rec, err := s.requestCancel(ctx, id, tenant)
	if err != nil {
		return nil, err
	}
	s.liveCounts(rec)
	return &rec.Batch, nil
}

// listLimit is limit, or def when it is 0; outside 1..most it is EINVALID.
func listLimit(limit, def, most int) (int, error) {
	if limit == 0 {
		return def, nil
	}
	if limit < 1 || limit > most {
		return 0, invalid("limit", "limit must be an integer from 1 to %d, got '%d'.", most, limit)
	}
	return limit, nil
}
