package http_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
)

// billed is what the upstream answered, in tokens: what a provider would charge.
func (h *harness) billed() int64 {
	st := h.sim.Stats()
	return st.PromptTokens + st.CompletionTokens
}

// TestServeBudgetHoldsAcrossACrash: the server dies while a key's batch runs (answers in
// flight and answers not yet in the ledger are lost, but billed); after a restart the key
// still does not spend past its budget, and the usage shows what could not be confirmed.
func TestServeBudgetHoldsAcrossACrash(t *testing.T) {
	const budget = 6000
	h := newHarness(t, sim.Config{Seed: 1, TTFT: 5 * time.Millisecond}, 8)
	h.cfg.Keys = budgetKeys(service.KeyBudget{MaxTokens: budget})
	h.cfg.UsageInterval = time.Hour // usage is recorded at the end of a run only
	h.start()
	c := h.client(keyA)
	b := createBatch(t, c, upload(t, c, inputLines(1000)).ID, "24h")
	waitBatch(t, c, b.ID, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 100 })
	h.crash()
	lost := h.billed()
	h.start()
	b = waitBatch(t, h.client(keyA), b.ID, terminal)
	if b.Status != openai.BatchStatusFailed || len(b.Errors.Data) == 0 || b.Errors.Data[0].Code != "insufficient_quota" {
		t.Fatalf("batch ended %s, errors %+v; want failed on the budget", b.Status, b.Errors)
	}
	if got := h.billed(); got > budget {
		t.Errorf("the upstream billed %d tokens of a %d-token budget (%d before the crash)", got, budget, lost)
	}
	u := h.usage(keyA)
	if u.Usage.TotalTokens+u.Unconfirmed.Tokens > budget || !u.Exhausted {
		t.Errorf("usage %+v, unconfirmed %+v: want at most %d in all, exhausted", u.Usage, u.Unconfirmed, budget)
	}
	if u.Unconfirmed.Tokens == 0 {
		t.Errorf("a crash with requests in flight left no unconfirmed spending")
	}
	// A clean stop leaves nothing unconfirmed behind.
	h.stop()
	h.start()
	if got := h.usage(keyA); got.Unconfirmed != u.Unconfirmed {
		t.Errorf("unconfirmed after a clean restart %+v, want %+v", got.Unconfirmed, u.Unconfirmed)
	}
}

// TestServeBudgetRefusesUnpricedModels: a key with a USD budget cannot run a model the
// price table does not know: it would cost $0 and the budget would not hold.
func TestServeBudgetRefusesUnpricedModels(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1, Models: []string{"gpt-4o-mini", "my-unpriced-model"}}, 4)
	h.cfg.Keys = budgetKeys(service.KeyBudget{MaxCost: 0.001})
	h.cfg.Cost = func(model string, u sluice.Usage) float64 {
		if model == "gpt-4o-mini" {
			return float64(u.Total()) / 1000
		}
		return 0 // not in the price table
	}
	h.start()
	lines := make([]string, 300)
	for i := range lines {
		lines[i] = fmt.Sprintf(`{"custom_id":"r-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"my-unpriced-model","messages":[{"role":"user","content":"hi %d"}],"max_tokens":5}}`, i, i)
	}
	b := h.runToEnd(keyA, lines, nil)
	if b.Status != openai.BatchStatusFailed || len(b.Errors.Data) == 0 || b.Errors.Data[0].Code != "model_not_priced" ||
		!strings.Contains(b.Errors.Data[0].Message, "--prices") {
		t.Fatalf("batch ended %s with %+v, want failed with model_not_priced naming --prices", b.Status, b.Errors)
	}
	if got := h.sim.Stats().Requests; got != 0 {
		t.Errorf("the upstream got %d requests of an unpriced model under a USD budget", got)
	}
	// Bob has no budget: the model runs.
	if b := h.runToEnd(keyB, lines[:3], nil); b.Status != openai.BatchStatusCompleted {
		t.Errorf("a key without budget: batch ended %s", b.Status)
	}
	// Priced by the operator, it runs under the budget.
	h.stop()
	h.cfg.Priced = func(string) bool { return true }
	h.start()
	if status, body := h.newBatch(keyA, upload(t, h.client(keyA), lines[:1]).ID, nil); status != http.StatusOK {
		t.Fatalf("create: %d %s", status, body)
	}
}

// TestServeBudgetWithoutMaxTokensOvershootsByOneRequest: requests with no max_tokens
// whose answers grow longer than the ones seen so far overshoot a budget by at most one
// request's output.
func TestServeBudgetWithoutMaxTokensOvershootsByOneRequest(t *testing.T) {
	const budget = 20000
	h := newHarness(t, sim.Config{Seed: 1, TTFT: 2 * time.Millisecond}, 8)
	h.cfg.Keys = budgetKeys(service.KeyBudget{MaxTokens: budget})
	h.cfg.ContextLimit = func(string) int64 { return 2048 }
	h.start()
	long := strings.Repeat(" word", 300) // the simulator's answers echo the prompt
	lines := make([]string, 300)
	for i := range lines {
		content := fmt.Sprintf("hi %d", i)
		if i >= 30 {
			content += long
		}
		lines[i] = fmt.Sprintf(`{"custom_id":"r-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":%q}]}}`, i, content)
	}
	b := h.runToEnd(keyA, lines, nil)
	if b.Status != openai.BatchStatusFailed {
		t.Fatalf("batch ended %s: the budget stopped nothing", b.Status)
	}
	const oneOutput = 320 // the longest answer: the echo of the long prompt
	if got := h.billed(); got > budget+oneOutput {
		t.Errorf("the upstream billed %d tokens of a %d-token budget: more than one request's output over", got, budget)
	}
}
