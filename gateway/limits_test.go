package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/gateway"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

// nobody is an engine upstream never called: online requests go through the gateway.
type nobody struct{}

func (nobody) Do(context.Context, *sluice.Request) (*sluice.Response, error) {
	return nil, errors.New("not used")
}
func (nobody) BaseURL() string { return "http://nobody.invalid/v1" }

func openStore(t *testing.T) *sqlite.Store { return openStoreB(t) }

func openStoreB(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func engine(t *testing.T, st sluice.Store, cfg sluice.Config) *sluice.Engine {
	t.Helper()
	eng, err := sluice.New(st, nobody{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func chat(c openai.Client, maxTokens int64) error {
	p := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	if maxTokens > 0 {
		p.MaxTokens = openai.Int(maxTokens)
	}
	_, err := c.Chat.Completions.New(context.Background(), p)
	return err
}

// TestBreakerOpenFailsOver skips an upstream whose engine's breaker is open without
// sending to it.
func TestBreakerOpenFailsOver(t *testing.T) {
	st := openStore(t)
	var calls atomic.Int64
	eng := engine(t, st, sluice.Config{BreakerFailures: 1, BreakerCooldown: time.Minute})
	base, up := startSim(t, sim.Config{Seed: 1})
	c, _, _ := startGateway(t, gateway.Config{Upstreams: []gateway.Upstream{
		{Name: "bad", BaseURL: failing(t, http.StatusInternalServerError, &calls), Models: []string{"gpt-4o-mini"}, Engine: eng},
		{Name: "live", BaseURL: base},
	}})
	for i := range 3 {
		if err := chat(c, 0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if calls.Load() != 1 || up.Stats().OK != 3 {
		t.Fatalf("the failing upstream was sent %d requests (want 1: its breaker opened), the live one answered %d",
			calls.Load(), up.Stats().OK)
	}
}

// TestBudgetInsufficientQuota answers 429 insufficient_quota once a key's budget cannot
// hold the next request, and records what was spent in the ledger.
func TestBudgetInsufficientQuota(t *testing.T) {
	st := openStore(t)
	base, up := startSim(t, sim.Config{Seed: 1})
	pool := sluice.NewBudgetPool(sluice.Budget{MaxTokens: 100}, nil, 0, 0)
	c, g, srv := startGateway(t, gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base}},
		Budget: func(_ context.Context, owner string) (*sluice.BudgetPool, error) {
			if owner != gateway.HashKey(clientKey) {
				t.Errorf("budget of an unknown owner")
			}
			return pool, nil
		},
		Usage: st,
	})
	var err error
	n := 0
	for ; n < 20; n++ {
		if err = chat(c, 16); err != nil {
			break
		}
	}
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "insufficient_quota" {
		t.Fatalf("after %d requests: err = %v, want 429 insufficient_quota", n, err)
	}
	srv.Close()
	_, spent := pool.Spent()
	if n == 0 || spent > 100 || up.Stats().OK != int64(n) {
		t.Fatalf("%d requests answered, %d tokens spent of 100, upstream answered %d", n, spent, up.Stats().OK)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	from := time.Now().AddDate(0, 0, -1)
	var recorded int64
	err = st.SumUsage(context.Background(), "", false, from, from.AddDate(0, 0, 2), func(_, name, _ string, u sluice.Usage, _ float64, batches, requests, _ int64) error {
		if name != "alice" {
			t.Errorf("usage recorded for %q", name)
		}
		if batches != 0 || requests != int64(n) {
			t.Errorf("the ledger counts %d batches and %d requests, want 0 and %d", batches, requests, n)
		}
		recorded += u.Total()
		return nil
	})
	if err != nil || recorded != spent {
		t.Fatalf("ledger has %d tokens (err %v), the pool spent %d", recorded, err, spent)
	}
}

// TestKeyRPM answers 429 rate_limit_exceeded past a key's own RPM, without sending, and
// says when to retry.
func TestKeyRPM(t *testing.T) {
	base, up := startSim(t, sim.Config{Seed: 1})
	c, _, _ := startGateway(t, gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base}},
		Keys:      []gateway.Key{{Name: "alice", Hash: gateway.HashKey(clientKey), RPM: 2}},
	})
	for i := range 2 {
		if err := chat(c, 0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	err := chat(c, 0)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "rate_limit_exceeded" {
		t.Fatalf("third request: err = %v, want 429 rate_limit_exceeded", err)
	}
	if h := apiErr.Response.Header; h.Get("Retry-After") == "" || h.Get("Retry-After-Ms") == "" {
		t.Errorf("the gateway's own 429 has Retry-After %q, Retry-After-Ms %q: want both", h.Get("Retry-After"), h.Get("Retry-After-Ms"))
	}
	if up.Stats().Requests != 2 {
		t.Fatalf("upstream got %d requests", up.Stats().Requests)
	}
}

// TestErrorAnswerCostsNothing settles a 400 answer's reservation with nothing spent.
func TestErrorAnswerCostsNothing(t *testing.T) {
	var calls atomic.Int64
	pool := sluice.NewBudgetPool(sluice.Budget{MaxTokens: 1000}, nil, 0, 0)
	c, _, srv := startGateway(t, gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "bad", BaseURL: failing(t, http.StatusBadRequest, &calls)}},
		Budget:    func(context.Context, string) (*sluice.BudgetPool, error) { return pool, nil },
	})
	if err := chat(c, 16); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("err = %v, want 400", err)
	}
	srv.Close()
	if _, spent := pool.Spent(); spent != 0 || calls.Load() != 1 {
		t.Fatalf("a 400 spent %d tokens (%d calls)", spent, calls.Load())
	}
}
