package report_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/mock"
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPrices: gpt-4o-mini at $1 and $2 per million tokens online, half in a batch.
func testPrices(t *testing.T) *pricing.Table {
	t.Helper()
	tab, err := pricing.Load(strings.NewReader(`{"prices":[{"model":"gpt-4o-mini","input":1,"output":2,"batch_input":0.5,"batch_output":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// partStore is a store that keeps parts, as sqlite and postgres do.
type partStore struct {
	*mock.Store
	parts []*sluice.Part
}

func (s partStore) Parts(context.Context, string) ([]*sluice.Part, error) { return s.parts, nil }

func stats() *sluice.Stats {
	return &sluice.Stats{
		Total: 4, Done: 3, Failed: 1, Attempts: 6, Retries: 2, Throttled: 1,
		Usage: sluice.Usage{PromptTokens: 3_000_000, CompletionTokens: 1_000_000},
		ByModel: []sluice.ModelStats{
			{Model: "gpt-4o-mini", Requests: 2, Usage: sluice.Usage{PromptTokens: 2_000_000, CompletionTokens: 1_000_000}},
			{Model: "my-finetune", Requests: 1, Usage: sluice.Usage{PromptTokens: 1_000_000}},
		},
		LatencyP50: 1500 * time.Microsecond, FailuresByCode: map[string]int64{"400": 1},
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	job := &sluice.Job{ID: "job_1", State: sluice.JobCompleted, Input: "in.jsonl", Elapsed: 2 * time.Second,
		CreatedAt: created, UpdatedAt: created.Add(10 * time.Second)}
	st := &mock.Store{StatsFunc: func(context.Context, string) (*sluice.Stats, error) { return stats(), nil }}
	got, err := report.Build(t.Context(), st, job, testPrices(t), report.Settings{Output: "out.jsonl", BaseURL: "http://x/v1"})
	if err != nil {
		t.Fatal(err)
	}
	cost := 4.0 // 2M prompt tokens at $1, 1M completion at $2
	want := &report.Job{
		Job: "job_1", State: "completed", Input: "in.jsonl", Output: "out.jsonl", BaseURL: "http://x/v1",
		Requests:       report.Requests{Total: 4, Done: 3, Failed: 1},
		FailuresByCode: map[string]int64{"400": 1}, Attempts: 6, Retries: 2, Throttled: 1,
		Tokens:  report.Tokens{Prompt: 3_000_000, Completion: 1_000_000, Total: 4_000_000},
		CostUSD: cost, CostComplete: false, UnpricedModels: []string{"my-finetune"},
		ByModel: []report.ModelUsage{
			{Model: "gpt-4o-mini", Requests: 2, Tokens: report.Tokens{Prompt: 2_000_000, Completion: 1_000_000, Total: 3_000_000}, CostUSD: &cost},
			{Model: "my-finetune", Requests: 1, Tokens: report.Tokens{Prompt: 1_000_000, Total: 1_000_000}},
		},
		LatencyMS:   report.Latency{P50: 1.5},
		WallSeconds: 2, Throughput: 2, // 4 final requests in 2 s
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Build (-want +got):\n%s", diff)
	}
}

// TestBuildBatch checks the split of a Batch API job between its batches and its online
// requests: the parts' usage is priced at batch prices, the rest online.
func TestBuildBatch(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	job := &sluice.Job{ID: "job_2", State: sluice.JobCompleted, CreatedAt: created, UpdatedAt: created.Add(8 * time.Second)}
	st := partStore{
		Store: &mock.Store{StatsFunc: func(context.Context, string) (*sluice.Stats, error) { return stats(), nil }},
		parts: []*sluice.Part{
			{Round: 1, Model: "gpt-4o-mini", Usage: sluice.Usage{PromptTokens: 1_000_000, CompletionTokens: 1_000_000}},
			{Round: 2, Model: "gpt-4o-mini", Usage: sluice.Usage{PromptTokens: 1_000_000}},
		},
	}
	got, err := report.Build(t.Context(), st, job, testPrices(t), report.Settings{Batch: true})
	if err != nil {
		t.Fatal(err)
	}
	// All of gpt-4o-mini went through batches: 2M prompt at $0.5, 1M completion at $1.
	want := &report.BatchSavings{
		Parts: 2, Rounds: 2,
		BatchTokens:  report.Tokens{Prompt: 2_000_000, Completion: 1_000_000, Total: 3_000_000},
		OnlineTokens: report.Tokens{Prompt: 1_000_000, Total: 1_000_000},
		BatchCostUSD: 2, AllOnlineCostUSD: 4, SavedUSD: 2,
	}
	if diff := cmp.Diff(want, got.Batch); diff != "" {
		t.Errorf("Batch (-want +got):\n%s", diff)
	}
	if got.CostUSD != 2 || got.WallSeconds != 8 {
		t.Errorf("cost $%v, wall %vs; want $2 and the 8 s from submission", got.CostUSD, got.WallSeconds)
	}

	// Without Settings.Batch, an online job's report has no batch split.
	online, err := report.Build(t.Context(), st, job, testPrices(t), report.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if online.Batch != nil || online.CostUSD != 4 {
		t.Errorf("online job: batch %+v, cost $%v; want none and $4", online.Batch, online.CostUSD)
	}
}

func TestBuildStatsError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	st := &mock.Store{StatsFunc: func(context.Context, string) (*sluice.Stats, error) { return nil, boom }}
	_, err := report.Build(t.Context(), st, &sluice.Job{ID: "job_3"}, nil, report.Settings{})
	if !errors.Is(err, boom) || err.Error() != "job job_3: disk on fire" {
		t.Errorf("err = %v, want it wrapped once with the job", err)
	}
}
