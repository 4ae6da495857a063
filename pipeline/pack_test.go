package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/tokens"
)

// packedTask is one task over eight documents, packed four to a request. Its long system
// message is what packing saves: each document's own request repeats it.
var packedTask = `
model: gpt-4o-mini
input: docs.csv
id: doc_id
tasks:
  category:
    system: "` + strings.Repeat("Classify the text into tech, business, health or other. ", 8) + `"
    user: "CATEGORY {{.text}}"
    pack: 4
`

func writePackDocs(t *testing.T, dir string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("doc_id,text\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "d%d,Acme announced chip number %d.\n", i, i)
	}
	writeFile(t, dir, "docs.csv", b.String())
}

// packAnswerer is an upstream that answers packed requests well, through the simulator:
// it replaces a packed request's user message by the answer array, which the simulator
// echoes, leaving out the documents in skip. Other requests pass through.
type packAnswerer struct {
	sluice.Upstream
	skip   map[string]bool
	packed atomic.Int64
}

func (p *packAnswerer) Do(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	var body map[string]any
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return nil, err
	}
	msgs := body["messages"].([]any)
	first := msgs[0].(map[string]any)
	if sys, _ := first["content"].(string); !strings.HasPrefix(sys, "You are given a JSON array") {
		return p.Upstream.Do(ctx, req)
	}
	p.packed.Add(1)
	last := msgs[len(msgs)-1].(map[string]any)
	var items []struct{ ID, Input string }
	if err := json.Unmarshal([]byte(last["content"].(string)), &items); err != nil {
		return nil, err
	}
	var answers []map[string]string
	for _, it := range items {
		if !p.skip[it.ID] {
			answers = append(answers, map[string]string{"id": it.ID, "answer": "PACKED " + it.Input})
		}
	}
	text, _ := json.Marshal(answers)
	last["content"] = string(text)
	r := *req
	r.Body, _ = json.Marshal(body)
	return p.Upstream.Do(ctx, &r)
}

func (h *harness) runWith(up sluice.Upstream, spec *pipeline.Spec) (*pipeline.Table, *pipeline.Report, int64) {
	h.t.Helper()
	eng, err := sluice.New(h.store, up, h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	before := h.sim.Stats().Requests
	table, rep, err := pipeline.Run(context.Background(), eng, h.store, plan(h.t, spec),
		pipeline.RunConfig{BaseURL: simURL, Estimator: tokens.Default(), Cache: h.store})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { table.Close() })
	return table, rep, h.sim.Stats().Requests - before
}

func TestRunPacked(t *testing.T) {
	dir := t.TempDir()
	writePackDocs(t, dir)
	h := newHarness(t, sim.Config{})
	spec := parse(t, dir, packedTask)
	up := &packAnswerer{Upstream: h.up, skip: map[string]bool{"d3": true}}

	table, rep, sent := h.runWith(up, spec)
	// Two packs of four; d3 is not in its pack's answer and gets its own request.
	if sent != 3 || up.packed.Load() != 2 || rep.Requests != 3 || rep.Packed != 7 || rep.OK != 8 || rep.Failed != 0 {
		t.Fatalf("%d requests reached the simulator (%d packed), report %+v; want 3 (2 packed), 7 cells packed, 8 ok", sent, up.packed.Load(), rep)
	}
	if rep.PackTokensSaved <= 0 {
		t.Errorf("pack tokens saved %d, want > 0", rep.PackTokensSaved)
	}
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("d%d", i)
		want := fmt.Sprintf("PACKED CATEGORY Acme announced chip number %d.", i)
		if id == "d3" {
			want = "CATEGORY Acme announced chip number 3." // its own request, echoed and padded
		}
		if c := cell(t, table, id, "category"); !c.OK() || !strings.HasPrefix(c.Text, want) || c.Requests == 0 {
			t.Errorf("%s: %+v, want an answer starting %q", id, c, want)
		}
	}

	// Unchanged: the packs and d3's own request come from the cache.
	_, rep, sent = h.runWith(up, spec)
	if sent != 0 || rep.Requests != 0 || rep.CacheHits != 3 || rep.OK != 8 {
		t.Fatalf("rerun: %d requests reached the simulator, report %+v; want 0 sent, 3 hits", sent, rep)
	}
}

// TestRunPackedMalformed: the simulator echoes a packed request's user message, an array
// of inputs without answers, so every document falls back to its own request.
func TestRunPackedMalformed(t *testing.T) {
	dir := t.TempDir()
	writePackDocs(t, dir)
	h := newHarness(t, sim.Config{})
	spec := parse(t, dir, packedTask)

	table, rep, sent := h.run(spec, true, nil)
	if sent != 2+8 || rep.Requests != 10 || rep.Packed != 0 || rep.PackTokensSaved != 0 || rep.OK != 8 {
		t.Fatalf("%d requests reached the simulator, report %+v; want 2 packs then 8 single requests, 8 ok", sent, rep)
	}
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("d%d", i)
		if c := cell(t, table, id, "category"); !c.OK() || !strings.HasPrefix(c.Text, fmt.Sprintf("CATEGORY Acme announced chip number %d.", i)) || c.Requests != 2 {
			t.Errorf("%s: %+v, want its own request's answer after the pack's", id, c)
		}
	}
}
