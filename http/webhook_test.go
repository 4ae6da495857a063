package http_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/sluice-llm/sluice/sim"
)

// hookReceiver is a webhook endpoint that answers 503 to its first failFirst attempts
// and passes on the bodies of the others.
type hookReceiver struct {
	failFirst int32
	attempts  atomic.Int32
	bodies    chan []byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if h.attempts.Add(1) <= h.failFirst || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.bodies <- body
}

func TestWebhookOnTerminalStatus(t *testing.T) {
	tests := []struct {
		name       string
		serverWide bool     // the URL is Config.WebhookURL, not the batch's metadata
		lines      []string // input
		want       openai.BatchStatus
	}{
		{name: "metadata webhook, completed", lines: inputLines(20), want: openai.BatchStatusCompleted},
		{name: "server-wide webhook, validation failed", serverWide: true,
			lines: []string{`{"custom_id":"x","method":"POST"`}, want: openai.BatchStatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := &hookReceiver{failFirst: 1, bodies: make(chan []byte, 4)}
			hook := httptest.NewServer(recv)
			defer hook.Close()
			h := newHarness(t, sim.Config{Seed: 1}, 4)
			h.cfg.WebhookBackoff = time.Millisecond
			var meta shared.Metadata
			if tt.serverWide {
				h.cfg.WebhookURL = hook.URL + "/hook"
			} else {
				h.cfg.BatchWebhooks = true
				meta = shared.Metadata{"webhook_url": hook.URL + "/hook"}
			}
			h.start()
			c := h.client(keyA)
			in := upload(t, c, tt.lines)
			b, err := c.Batches.New(t.Context(), openai.BatchNewParams{
				InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
				CompletionWindow: openai.BatchNewParamsCompletionWindow24h, Metadata: meta,
			})
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			select {
			case body = <-recv.bodies:
			case <-time.After(30 * time.Second):
				t.Fatalf("no webhook after %d attempts", recv.attempts.Load())
			}
			var got openai.Batch
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("webhook body %q: %v", body, err)
			}
			if got.ID != b.ID || got.Object != "batch" || got.Status != tt.want {
				t.Errorf("webhook sent batch %s (%s, %s), want %s %s", got.ID, got.Object, got.Status, b.ID, tt.want)
			}
			polled := waitBatch(t, c, b.ID, terminal)
			gc, pc := got.RequestCounts, polled.RequestCounts
			if polled.Status != tt.want || gc.Total != pc.Total || gc.Completed != pc.Completed || gc.Failed != pc.Failed {
				t.Errorf("webhook batch %s %+v, polled %s %+v", got.Status, gc, polled.Status, pc)
			}
			if !tt.serverWide && gc.Completed != int64(len(tt.lines)) {
				t.Errorf("webhook batch counts %+v, want %d completed", gc, len(tt.lines))
			}
			h.stop() // joins every delivery
			if n := recv.attempts.Load(); n != 2 {
				t.Errorf("webhook tried %d times, want 2 (one failure, one success)", n)
			}
		})
	}
}

func TestWebhookURLMustBeHTTP(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.cfg.BatchWebhooks = true
	h.start()
	c := h.client(keyA)
	in := upload(t, c, inputLines(1))
	_, err := c.Batches.New(t.Context(), openai.BatchNewParams{
		InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h,
		Metadata:         shared.Metadata{"webhook_url": "file:///etc/passwd"},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Param != "metadata" {
		t.Errorf("create with a file: webhook: %v, want a 400 on metadata", err)
	}
}

// TestBatchWebhooksOffByDefault: a client may not make the server POST anywhere unless
// the operator allows it.
func TestBatchWebhooksOffByDefault(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.start()
	c := h.client(keyA)
	in := upload(t, c, inputLines(1))
	_, err := c.Batches.New(t.Context(), openai.BatchNewParams{
		InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h,
		Metadata:         shared.Metadata{"webhook_url": "http://127.0.0.1:1/hook"},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Message, "--batch-webhooks") {
		t.Errorf("create with a metadata webhook: %v, want a 400 naming --batch-webhooks", err)
	}
}
