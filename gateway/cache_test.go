package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/gateway"
	"github.com/sluice-llm/sluice/sim"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestCache answers a repeated deterministic request from the cache, per key, until its
// TTL, and never a streamed or non-deterministic one.
func TestCache(t *testing.T) {
	st := openStore(t)
	base, up := startSim(t, sim.Config{Seed: 1})
	clk := &clock{t: time.Now()}
	const otherKey = "sk-other-key-2"
	_, g, srv := startGateway(t, gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base}},
		Keys:      []gateway.Key{{Name: "alice", Hash: gateway.HashKey(clientKey)}, {Name: "bob", Hash: gateway.HashKey(otherKey)}},
		Cache:     st, CacheTTL: time.Minute, Now: clk.now,
	})
	send := func(key, body string) (string, string) {
		t.Helper()
		resp := post(t, srv.URL, "/v1/chat/completions", key, body)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return resp.Header.Get("X-Sluice-Cache"), string(b)
	}
	const det = `{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	if hit, _ := send(clientKey, det); hit != "" {
		t.Fatal("a first request was a hit")
	}
	hit, body := send(clientKey, det)
	if hit != "hit" || up.Stats().Requests != 1 || body == "" {
		t.Fatalf("second request: cache %q, upstream got %d", hit, up.Stats().Requests)
	}
	if hit, _ := send(otherKey, det); hit != "" {
		t.Fatal("another key's request hit a cache that is per key")
	}
	for _, b := range []string{
		`{"model":"gpt-4o-mini","temperature":0.7,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
	} {
		send(clientKey, b)
		if hit, _ := send(clientKey, b); hit != "" {
			t.Fatalf("a request that is not deterministic hit: %s", b)
		}
	}
	clk.add(2 * time.Minute)
	if hit, _ := send(clientKey, det); hit != "" {
		t.Fatal("an entry past its TTL was served")
	}
	srv.Close()
	var hits, requests int64
	for _, u := range g.Usage() {
		if u.Key == "alice" {
			hits, requests = hits+u.CacheHits, requests+u.Requests
		}
	}
	if hits != 1 || requests != 7 {
		t.Fatalf("alice: %d hits of %d requests, want 1 of 7", hits, requests)
	}
}

// TestCacheHitsInLedger records cache hits in the ledger, as requests that cost nothing,
// even when a row holds nothing but hits.
func TestCacheHitsInLedger(t *testing.T) {
	st := openStore(t)
	base, up := startSim(t, sim.Config{Seed: 1})
	cfg := gateway.Config{Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base}}, Cache: st, CacheTTL: time.Minute, Usage: st}
	const det = `{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	for run := range 2 { // the second run's row is only hits: the first run cached the answer
		_, g, srv := startGateway(t, cfg)
		for range 2 {
			resp := post(t, srv.URL, "/v1/chat/completions", clientKey, det)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("run %d: status %d", run, resp.StatusCode)
			}
		}
		srv.Close()
		if err := g.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := up.Stats().Requests; n != 1 {
		t.Fatalf("the upstream got %d requests, want 1", n)
	}
	from := time.Now().AddDate(0, 0, -1)
	var rows []string
	err := st.SumUsage(context.Background(), "", true, from, from.AddDate(0, 0, 2),
		func(_, name, _ string, u sluice.Usage, cost float64, batches, requests, hits int64) error {
			rows = append(rows, fmt.Sprintf("%s: %d batches, %d requests, %d hits, %d tokens", name, batches, requests, hits, u.Total()))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || !strings.HasPrefix(rows[0], "alice: 0 batches, 4 requests, 3 hits, ") {
		t.Fatalf("ledger: %q, want alice's 4 requests with 3 hits", rows)
	}
}

// TestCacheHitSpendsNoTokens counts a cache hit against its key's RPM but not its TPM: a
// hit sends nothing upstream, so the key's token cap is left for requests that do.
func TestCacheHitSpendsNoTokens(t *testing.T) {
	st := openStore(t)
	base, up := startSim(t, sim.Config{Seed: 1})
	// A request without max_tokens is taken to write 256 tokens, and its prompt is a token
	// for every 4 bytes: a minute's 200 tokens hold less than one such request, which a
	// full bucket lets through into debt.
	const det = `{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	_, _, srv := startGateway(t, gateway.Config{
		Upstreams: []gateway.Upstream{{Name: "sim", BaseURL: base}},
		Keys:      []gateway.Key{{Name: "alice", Hash: gateway.HashKey(clientKey), TPM: 200, RPM: 4}},
		Cache:     st, CacheTTL: time.Minute,
	})
	send := func(body string) (int, string) {
		t.Helper()
		resp := post(t, srv.URL, "/v1/chat/completions", clientKey, body)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Sluice-Cache")
	}
	if status, hit := send(det); status != http.StatusOK || hit != "" {
		t.Fatalf("first request: status %d, cache %q; want 200 and a miss", status, hit)
	}
	for i := range 3 {
		if status, hit := send(det); status != http.StatusOK || hit != "hit" {
			t.Fatalf("hit %d: status %d, cache %q; want 200 from the cache", i, status, hit)
		}
	}
	if status, _ := send(det); status != http.StatusTooManyRequests {
		t.Fatalf("a fifth request in the minute: status %d, want 429 (RPM 4 counts hits)", status)
	}
	if n := up.Stats().Requests; n != 1 {
		t.Fatalf("the upstream got %d requests, want 1", n)
	}
}
