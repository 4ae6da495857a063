package pipeline_test

import (
	"context"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sim"
)

// cachedUpstream is the simulator's client reporting every answer's prompt as served
// from the provider's cache in fields the body's usage object does not have, as the
// client reads DeepSeek's prompt_cache_hit_tokens.
type cachedUpstream struct{ sluice.Upstream }

func (u cachedUpstream) Do(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	resp, err := u.Upstream.Do(ctx, req)
	if resp != nil {
		resp.Usage.CachedTokens = resp.Usage.PromptTokens
	}
	return resp, err
}

// TestRunUsageFromTheLedger: a pipeline counts the usage the ledger recorded for each
// answer (Result.Usage), cached tokens included, not only what it can read from the body.
func TestRunUsageFromTheLedger(t *testing.T) {
	dir := t.TempDir()
	writeDocs(t, dir)
	h := newHarness(t, sim.Config{})
	h.up2 = cachedUpstream{h.up}
	_, rep, sent := h.run(parse(t, dir, threeTasks), false, nil)
	if sent != 9 {
		t.Fatalf("%d sent, want 9", sent)
	}
	if rep.Usage.PromptTokens == 0 || rep.Usage.CachedTokens != rep.Usage.PromptTokens {
		t.Errorf("report usage %+v: want every prompt token counted as cached, as the ledger has it", rep.Usage)
	}
}
