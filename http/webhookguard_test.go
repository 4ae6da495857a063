package http_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/sluice-llm/sluice/sim"
)

// TestWebhookFollowsNoRedirect: a webhook answering 307 elsewhere is not followed there.
func TestWebhookFollowsNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer hook.Close()
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.cfg.WebhookURL = hook.URL + "/hook"
	h.cfg.WebhookBackoff = time.Millisecond
	h.start()
	h.runToEnd(keyA, inputLines(3), nil)
	h.stop() // joins every delivery
	if hits.Load() != 1 || elsewhere.Load() != 0 {
		t.Errorf("webhook tried %d times and the redirect target got %d posts, want 1 and 0", hits.Load(), elsewhere.Load())
	}
}

// TestWebhookFromMetadataStopsWhenTheOperatorTurnsItOff: a hook a client set while
// --batch-webhooks was on is not delivered once the server runs without it.
func TestWebhookFromMetadataStopsWhenTheOperatorTurnsItOff(t *testing.T) {
	recv := &hookReceiver{bodies: make(chan []byte, 4)}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	h := newHarness(t, slowSim(), 4)
	h.cfg.BatchWebhooks = true
	h.start()
	c := h.client(keyA)
	b, err := c.Batches.New(t.Context(), openai.BatchNewParams{
		InputFileID: upload(t, c, inputLines(200)).ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h, Metadata: shared.Metadata{"webhook_url": hook.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitBatch(t, c, b.ID, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 10 })
	h.stop()
	h.cfg.BatchWebhooks = false
	h.start()
	if got := waitBatch(t, h.client(keyA), b.ID, terminal); got.Status != openai.BatchStatusCompleted {
		t.Fatalf("batch ended %s", got.Status)
	}
	h.stop()
	if n := recv.attempts.Load(); n != 0 {
		t.Errorf("the client's webhook got %d posts after the operator turned client webhooks off", n)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWebhookCredentialsNeverLogged: a webhook that cannot be delivered is logged
// without the user info or query of its URL.
func TestWebhookCredentialsNeverLogged(t *testing.T) {
	// A closed port: every attempt fails to connect.
	dead := httptest.NewServer(http.NotFoundHandler())
	addr := dead.Listener.Addr().String()
	dead.Close()
	logs := &syncBuffer{}
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	h.cfg.WebhookURL = "http://hookuser:hunter2pass@" + addr + "/hook?token=tok-s3cr3t&x=1"
	h.cfg.WebhookAttempts = 2
	h.cfg.WebhookBackoff = time.Millisecond
	h.start()
	h.runToEnd(keyA, inputLines(2), nil)
	h.stop()
	out := logs.String()
	if !strings.Contains(out, "webhook not delivered") {
		t.Fatalf("no failed delivery logged: %s", out)
	}
	for _, secret := range []string{"hunter2pass", "hookuser", "tok-s3cr3t"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q: %s", secret, out)
		}
	}
}

// TestWebhookRefusesMetadataAddresses: link-local and fd00::/8 addresses, in any
// spelling, are refused when a batch is created, unless the operator allows them.
func TestWebhookRefusesMetadataAddresses(t *testing.T) {
	refused := []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/latest",
		"http://[::ffff:a9fe:a9fe]/latest",
		"http://[64:ff9b::169.254.169.254]/",
		"http://[fd00:ec2::254]/latest",
		"http://[fe80::1%25eth0]/",
	}
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.cfg.BatchWebhooks = true
	h.cfg.WebhookAttempts = 1
	// Only the check at create is tested here: deliveries go nowhere.
	h.cfg.WebhookClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("not delivered in this test")
	})}
	h.start()
	c := h.client(keyA)
	in := upload(t, c, inputLines(1))
	create := func(u string) error {
		_, err := c.Batches.New(t.Context(), openai.BatchNewParams{
			InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h, Metadata: shared.Metadata{"webhook_url": u},
		})
		return err
	}
	for _, u := range refused {
		var apiErr *openai.Error
		if err := create(u); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Param != "metadata" {
			t.Errorf("webhook %s: %v, want a 400 on metadata", u, err)
		}
	}
	if err := create("http://127.0.0.1:1/hook"); err != nil {
		t.Errorf("a loopback webhook: %v, want it allowed", err)
	}
	h.stop()
	h.cfg.WebhookAllow = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}
	h.start()
	c = h.client(keyA)
	if err := create("http://169.254.169.254/hook"); err != nil {
		t.Errorf("an allowed link-local webhook: %v", err)
	}
	if err := create("http://[fd00:ec2::254]/latest"); err == nil {
		t.Error("fd00::/8 is accepted although only 169.254.0.0/16 is allowed")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
