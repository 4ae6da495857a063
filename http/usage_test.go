package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
)

// testClock is a settable clock for the budget periods.
type testClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// perThousand prices every model at $1 per 1,000 tokens.
func perThousand(_ string, u sluice.Usage) float64 { return float64(u.Total()) / 1000 }

// budgetKeys names keyA alice, with budget b, and keyB bob, with none.
func budgetKeys(b service.KeyBudget) []service.Key {
	return []service.Key{
		{Name: "alice", Hash: service.HashKey(keyA), Budget: b},
		{Name: "bob", Hash: service.HashKey(keyB)},
	}
}

// call sends a raw API request with key and returns the status and body.
func (h *harness) call(key, method, path string, body any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		h.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, data
}

// newBatch creates a batch of key's over fileID with metadata, returning the status and body.
func (h *harness) newBatch(key, fileID string, metadata map[string]string) (int, []byte) {
	h.t.Helper()
	return h.call(key, "POST", "/v1/batches", map[string]any{"input_file_id": fileID,
		"endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": metadata})
}

func (h *harness) usage(key string) service.UsageReport {
	h.t.Helper()
	status, body := h.call(key, "GET", "/v1/usage", nil)
	if status != http.StatusOK {
		h.t.Fatalf("GET /v1/usage: %d %s", status, body)
	}
	var u service.UsageReport
	if err := json.Unmarshal(body, &u); err != nil {
		h.t.Fatal(err)
	}
	return u
}

// runToEnd creates a batch of key's over lines and waits for it to end.
func (h *harness) runToEnd(key string, lines []string, metadata map[string]string) *openai.Batch {
	h.t.Helper()
	c := h.client(key)
	status, body := h.newBatch(key, upload(h.t, c, lines).ID, metadata)
	if status != http.StatusOK {
		h.t.Fatalf("create batch: %d %s", status, body)
	}
	var b struct{ ID string }
	if err := json.Unmarshal(body, &b); err != nil {
		h.t.Fatal(err)
	}
	return waitBatch(h.t, c, b.ID, terminal)
}

func TestServeBudgetRefusesBatchesUntilThePeriodResets(t *testing.T) {
	clock := newClock(time.Date(2026, 5, 20, 23, 0, 0, 0, time.UTC))
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	// Each request costs 14 tokens at worst (and here also at best): 30 pay for two.
	h.cfg.Keys = budgetKeys(service.KeyBudget{MaxTokens: 30, Period: service.PeriodDaily})
	h.cfg.Now, h.cfg.UsageInterval = clock.now, time.Hour // no usage check while it runs
	h.start()
	b := h.runToEnd(keyA, inputLines(5), nil)
	if b.Status != openai.BatchStatusFailed || b.Errors.Data[0].Code != "insufficient_quota" || b.RequestCounts.Completed != 2 {
		t.Fatalf("first batch ended %s with %d done and %+v, want failed on insufficient_quota after the 2 the budget pays for",
			b.Status, b.RequestCounts.Completed, b.Errors)
	}

	in := upload(t, h.client(keyA), inputLines(1))
	status, body := h.newBatch(keyA, in.ID, nil)
	if status != http.StatusTooManyRequests {
		t.Fatalf("create over budget: %d %s, want 429", status, body)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	msg, _ := got["error"]["message"].(string)
	if !strings.HasPrefix(msg, "You exceeded your current quota") {
		t.Errorf("message %q", msg)
	}
	delete(got["error"], "message")
	want := map[string]map[string]any{"error": {"type": "insufficient_quota", "param": nil, "code": "insufficient_quota"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error body (-want +got):\n%s", diff)
	}
	ca := h.client(keyA)
	if _, err := ca.Batches.New(context.Background(), openai.BatchNewParams{InputFileID: in.ID,
		Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: "24h"}); statusOf(err) != http.StatusTooManyRequests {
		t.Errorf("SDK create over budget: %v, want 429", err)
	}
	if status, body := h.newBatch(keyB, upload(t, h.client(keyB), inputLines(1)).ID, nil); status != http.StatusOK {
		t.Errorf("another key's create: %d %s, want 200", status, body)
	}
	if u := h.usage(keyA); !u.Exhausted || *u.Remaining.Tokens >= 14 {
		t.Errorf("usage over budget: %+v", u)
	}

	clock.advance(time.Hour) // 2026-05-21 00:00 UTC: a new day
	if status, body := h.newBatch(keyA, in.ID, nil); status != http.StatusOK {
		t.Errorf("create in the next period: %d %s, want 200", status, body)
	}
	u := h.usage(keyA)
	if start := time.Unix(u.PeriodStart, 0).UTC(); !start.Equal(time.Date(2026, 5, 21, 0, 0, 0, 0, time.UTC)) || u.Exhausted {
		t.Errorf("usage after the reset: period from %s, exhausted %v", start, u.Exhausted)
	}
}

func TestServeBudgetStopsARunningBatch(t *testing.T) {
	h := newHarness(t, slowSim(), 2)
	h.cfg.Keys = budgetKeys(service.KeyBudget{MaxCost: 0.5}) // about 10 requests' worth
	h.cfg.Cost, h.cfg.UsageInterval = perThousand, 10*time.Millisecond
	h.start()
	b := h.runToEnd(keyA, inputLines(300), nil)
	if b.Status != openai.BatchStatusFailed || len(b.Errors.Data) != 1 || b.Errors.Data[0].Code != "insufficient_quota" {
		t.Fatalf("batch ended %s with %+v, want failed with insufficient_quota", b.Status, b.Errors)
	}
	c := h.client(keyA)
	out, errs := download(t, c, b.OutputFileID), download(t, c, b.ErrorFileID)
	seen := map[string]int{}
	countIDs(t, seen, out)
	countIDs(t, seen, errs)
	if len(out) == 0 || len(seen) != 300 {
		t.Fatalf("%d results and %d errors over %d ids, want some results and every id of 300", len(out), len(errs), len(seen))
	}
	for _, e := range errs {
		if e.Error == nil || e.Error.Code != "insufficient_quota" {
			t.Fatalf("error line %+v, want insufficient_quota", e)
		}
	}
	if got := h.sim.Stats().Requests; got >= 300 {
		t.Errorf("the upstream got %d requests: the budget stopped nothing", got)
	}
	if u := h.usage(keyA); !u.Exhausted || u.Usage.TotalTokens != b.Usage.TotalTokens {
		t.Errorf("usage %+v, want exhausted with the batch's %d tokens", u, b.Usage.TotalTokens)
	}
	// Each request reserves its worst case before it is sent: the key never spends
	// past its budget, however many requests were in flight.
	if u := h.usage(keyA); u.Usage.CostUSD > 0.5 {
		t.Errorf("spent $%v of a $0.5 budget", u.Usage.CostUSD)
	}
}

func TestServeUsagePerKeyAndUserSurvivesRestart(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.cfg.Keys = budgetKeys(service.KeyBudget{MaxCost: 1000, ResetDay: 15})
	h.cfg.Cost = perThousand
	h.start()
	b1 := h.runToEnd(keyA, inputLines(20), map[string]string{"user": "u-1"})
	b2 := h.runToEnd(keyA, inputLines(10), nil)
	if b1.Status != openai.BatchStatusCompleted || b2.Status != openai.BatchStatusCompleted {
		t.Fatalf("batches ended %s and %s", b1.Status, b2.Status)
	}
	u := h.usage(keyA)
	total := b1.Usage.TotalTokens + b2.Usage.TotalTokens
	if u.Key != "alice" || u.Batches != 2 || u.Usage.TotalTokens != total || total == 0 {
		t.Fatalf("usage of alice: %+v, want 2 batches and %d tokens", u, total)
	}
	if want := float64(total) / 1000; u.Usage.CostUSD != want || *u.Limits.CostUSD != 1000 || *u.Remaining.CostUSD != 1000-want {
		t.Errorf("cost %v limits %+v remaining %+v, want $%v of $1000", u.Usage.CostUSD, u.Limits, u.Remaining, want)
	}
	byUser := map[string]int64{}
	for _, bu := range u.ByUser {
		byUser[bu.User] = bu.TotalTokens
	}
	if diff := cmp.Diff(map[string]int64{"u-1": b1.Usage.TotalTokens, "": b2.Usage.TotalTokens}, byUser); diff != "" {
		t.Errorf("usage by user (-want +got):\n%s", diff)
	}
	start, end := time.Unix(u.PeriodStart, 0).UTC(), time.Unix(u.PeriodEnd, 0).UTC()
	if start.Day() != 15 || end.Day() != 15 || u.Period != service.PeriodMonthly {
		t.Errorf("period %s to %s (%s), want from the 15th to the 15th", start, end, u.Period)
	}
	if ub := h.usage(keyB); ub.Key != "bob" || ub.Batches != 0 || ub.Usage.TotalTokens != 0 || len(ub.ByUser) != 0 || ub.Limits != nil {
		t.Errorf("bob sees usage he did not make: %+v", ub)
	}

	h.stop()
	h.start()
	if diff := cmp.Diff(u, h.usage(keyA)); diff != "" {
		t.Errorf("usage after a restart (-before +after):\n%s", diff)
	}
}

func TestBudgetBounds(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name       string
		budget     service.KeyBudget
		at         time.Time
		start, end time.Time
	}{
		{"monthly from the 1st", service.KeyBudget{}, day(2026, 3, 10).Add(5 * time.Hour), day(2026, 3, 1), day(2026, 4, 1)},
		{"before the reset day", service.KeyBudget{ResetDay: 15}, day(2026, 3, 14).Add(23 * time.Hour), day(2026, 2, 15), day(2026, 3, 15)},
		{"on the reset day", service.KeyBudget{ResetDay: 15}, day(2026, 3, 15), day(2026, 3, 15), day(2026, 4, 15)},
		{"across the year", service.KeyBudget{Period: service.PeriodMonthly, ResetDay: 5}, day(2026, 1, 3), day(2025, 12, 5), day(2026, 1, 5)},
		{"daily", service.KeyBudget{Period: service.PeriodDaily}, day(2026, 2, 28).Add(90 * time.Minute), day(2026, 2, 28), day(2026, 3, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := tt.budget.Bounds(tt.at)
			if !start.Equal(tt.start) || !end.Equal(tt.end) {
				t.Errorf("Bounds(%s) = %s, %s; want %s, %s", tt.at, start, end, tt.start, tt.end)
			}
		})
	}
}
