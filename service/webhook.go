package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/sluice-llm/sluice"
)

// Webhook defaults.
const (
	// WebhookMetadataKey is the metadata key of a batch's webhook URL, which overrides
	// Config.WebhookURL for that batch.
	WebhookMetadataKey = "webhook_url"
	// DefaultWebhookAttempts is how many times a webhook is tried before it is given up.
	DefaultWebhookAttempts = 5
	// DefaultWebhookBackoff is the most a webhook waits after its first failed attempt;
	// the ceiling doubles after each further one, up to maxWebhookBackoff, and the wait
	// is drawn below it (sluice.Backoff, the engine's backoff).
	DefaultWebhookBackoff = time.Second

	maxWebhookBackoff = 30 * time.Second
	webhookTimeout    = 10 * time.Second // one attempt, with the default client
)

// notify starts the delivery of rec, which has just reached a terminal status, to its
// webhook, if it has one: its metadata's while Config.BatchWebhooks allows them (a hook
// set while it did is dropped once the operator turns it off), else Config.WebhookURL. It never blocks: delivery runs on a goroutine that Close joins.
// Callers are batch goroutines, so that every delivery has started by the time Close has
// waited for them.
func (s *Service) notify(rec *batchRecord) {
	target := s.cfg.WebhookURL
	if u := rec.Metadata[WebhookMetadataKey]; u != "" && s.cfg.BatchWebhooks {
		target = u
	}
	if target == "" {
		return
	}
	body, err := json.Marshal(rec.Batch)
	if err != nil {
		s.cfg.Logger.Error("webhook", "batch", rec.ID, "err", err)
		return
	}
	id, status := rec.ID, rec.Status // rec stays its caller's
	s.hooks.Go(func() {
		if err := s.deliver(target, body); err != nil {
			s.cfg.Logger.Error("webhook not delivered", "batch", id, "status", status, "url", redactURL(target), "err", err)
		}
	})
}

// deliver POSTs body to target until it answers 2xx, it answers a status not worth
// retrying, the attempts run out, or the server's context ends.
func (s *Service) deliver(target string, body []byte) error {
	for attempt := 1; ; attempt++ {
		retry, err := s.post(target, body)
		if err == nil {
			return nil
		}
		if !retry || attempt >= s.cfg.WebhookAttempts {
			return fmt.Errorf("attempt %d: %w", attempt, err)
		}
		t := time.NewTimer(sluice.Backoff(attempt, 0, s.cfg.WebhookBackoff, maxWebhookBackoff, rand.Float64()))
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return fmt.Errorf("attempt %d: %w (then the server closed)", attempt, err)
		}
	}
}

// post makes one attempt and says whether a failure is worth retrying: connection
// errors, 408, 409, 429 and 5xx are (sluice.UpstreamError.Retryable).
func (s *Service) post(target string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice-serve-webhook")
	resp, err := s.cfg.WebhookClient.Do(req)
	if errors.Is(err, errWebhookAddress) {
		return false, redactError(err)
	}
	if err != nil {
		return true, redactError(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if c := resp.StatusCode; c >= 200 && c < 300 {
		return false, nil
	}
	// Retried as the engine retries a request's answer.
	return (&sluice.UpstreamError{StatusCode: resp.StatusCode}).Retryable(), fmt.Errorf("answered %s", resp.Status)
}
