package pricing

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string // the model found; "" for none
	}{
		{"gpt-4o-mini", "gpt-4o-mini"},
		{"GPT-4o-Mini", "gpt-4o-mini"},
		{" gpt-4o-mini\n", "gpt-4o-mini"},
		{"gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{"openai/gpt-4o-mini", "gpt-4o-mini"},
		{"azure/gpt-4o", "gpt-4o"}, // the one model-name rule: tokens.Exact("azure/gpt-4o") too
		{"openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"gpt-4o-2024-05-13", "gpt-4o-2024-05-13"}, // its own, higher, price
		{"openai/gpt-4o-2024-05-13", "gpt-4o-2024-05-13"},
		{"gpt-4-turbo-2024-04-09", "gpt-4-turbo"},
		{"gpt-3.5-turbo-0125", "gpt-3.5-turbo"},
		{"gpt-5-chat-latest", "gpt-5"},
		{"gpt-5-2025-08-07", "gpt-5"},
		{"deepseek/deepseek-chat", "deepseek-chat"},
		{"deepseek-reasoner", "deepseek-reasoner"},
		{"models/gemini-2.0-flash", "gemini-2.0-flash"},
		{"models/gemini-2.0-flash-001", "gemini-2.0-flash"},
		{"google/gemini-2.5-pro", "gemini-2.5-pro"},
		{"gemini-2.5-flash-lite", "gemini-2.5-flash-lite"},
		{"claude-sonnet-4-20250514", "claude-sonnet-4"},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"claude-opus-4-1-20250805", "claude-opus-4-1"},
		{"claude-sonnet-4-0", "claude-sonnet-4"},
		{"claude-3-5-sonnet-latest", "claude-3-5-sonnet"},
		{"claude-3-5-sonnet@20240620", "claude-3-5-sonnet"},
		{"claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"},
		{"anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"},
		{"openrouter/anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"},
		{"qwen-plus-2025-07-28", "qwen-plus"},
		{"qwen-max-latest", "qwen-max"},
		{"mistral-large-latest", "mistral-large"},
		{"mistral-large-2411", "mistral-large"},
		{"mistralai/codestral-2501", "codestral"},
		{"text-embedding-3-large", "text-embedding-3-large"},

		{"", ""},
		{"   ", ""},
		{"/", ""},
		{"-latest", ""},
		{"openai/", ""},
		{"gpt-4o-mini-tts", ""},
		{"ft:gpt-4o-mini-2024-07-18:acme::abc123", ""},
		{"llama-3.1-8b-instant", ""},
		{"gpt-4o-2024-13", ""},
		{"unknown-2024-01-01", ""},
		{"gpt-3.5-turbo-1106", ""}, // an older snapshot with another price: no guess
	}
	for _, tt := range tests {
		p, ok := Default().Lookup(tt.name)
		switch {
		case tt.want == "" && ok:
			t.Errorf("Lookup(%q) found %s, want nothing", tt.name, p.Model)
		case tt.want != "" && !ok:
			t.Errorf("Lookup(%q) found nothing, want %s", tt.name, tt.want)
		case p.Model != tt.want:
			t.Errorf("Lookup(%q) found %s, want %s", tt.name, p.Model, tt.want)
		}
	}
}

func TestTableCost(t *testing.T) {
	t.Parallel()
	tab := Default()
	u := sluice.Usage{PromptTokens: 1_000_000, CompletionTokens: 1_000_000}
	p, ok := tab.Lookup("gpt-4o-mini")
	if !ok {
		t.Fatal("no price for gpt-4o-mini")
	}
	want := p.Cost(u, false)
	for _, model := range []string{"gpt-4o-mini", "openai/gpt-4o-mini-2024-07-18", "azure/GPT-4o-mini"} {
		got, ok := tab.Cost(model, u)
		if !ok || got != want {
			t.Errorf("Cost(%q) = %v, %v; want %v, true", model, got, ok, want)
		}
		if got := tab.OnlineCost(model, u); got != want {
			t.Errorf("OnlineCost(%q) = %v, want %v", model, got, want)
		}
	}
	if got, ok := tab.Cost("no-such-model", u); ok || got != 0 {
		t.Errorf("Cost(unpriced) = %v, %v; want 0, false", got, ok)
	}
	if got := tab.OnlineCost("no-such-model", u); got != 0 {
		t.Errorf("OnlineCost(unpriced) = %v, want 0", got)
	}
	var nilTable *Table
	if got, ok := nilTable.Cost("gpt-4o", u); ok || got != 0 {
		t.Errorf("nil table Cost = %v, %v; want 0, false", got, ok)
	}
}

func TestStripVersion(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"claude-sonnet-4-20250514", "claude-sonnet-4"},
		{"claude-3-5-sonnet@20240620", "claude-3-5-sonnet"},
		{"m@001", "m"},
		{"mistral-large-latest", "mistral-large"},
		{"gpt-4o", "gpt-4o"},
		{"gpt-4-0613", "gpt-4-0613"},         // -MMDD: too ambiguous to strip
		{"model-12345678", "model-12345678"}, // eight digits, not a 20YY date
		{"2024-08-06", "2024-08-06"},
		{"-2024-08-06", "-2024-08-06"},
		{"x-2024-8-06", "x-2024-8-06"},
		{"latest", "latest"},
		{"@x", "@x"},
	}
	for _, tt := range tests {
		got, ok := stripVersion(tt.in)
		if got != tt.want || ok != (tt.in != tt.want) {
			t.Errorf("stripVersion(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func mustLoad(t *testing.T, text string) *Table {
	t.Helper()
	tab, err := Load(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tab
}

func TestMerge(t *testing.T) {
	t.Parallel()
	base := mustLoad(t, `
prices:
  - {model: a, input: 1, output: 2}
  - {model: b, input: 3, output: 4}
  - {model: c, input: 5, output: 6}
aliases:
  a-alias: a
  shadowed: c
`)
	over := mustLoad(t, `
prices:
  - {model: B, input: 30, output: 40, source: mine}
  - {model: d, input: 7, output: 8}
  - {model: shadowed, input: 9, output: 9}
aliases:
  c: d
  d-alias: d
  a-alias: b
`)
	m := base.Merge(over)
	tests := []struct {
		name, model string
		input       float64
	}{
		{"a", "a", 1},               // kept from base
		{"b", "B", 30},              // overridden
		{"d", "d", 7},               // added
		{"c", "d", 7},               // base's model c, replaced by over's alias c -> d
		{"shadowed", "shadowed", 9}, // base's alias, replaced by over's price
		{"d-alias", "d", 7},         // over's alias to over's model
		{"a-alias", "B", 30},        // over's alias wins
		{"openai/d-2025-01-01", "d", 7},
	}
	for _, tt := range tests {
		p, ok := m.Lookup(tt.name)
		if !ok || p.Model != tt.model || p.Input != tt.input {
			t.Errorf("merged Lookup(%q) = %+v, %v; want model %s at %v", tt.name, p, ok, tt.model, tt.input)
		}
	}
	// Neither input changed.
	if p, _ := base.Lookup("b"); p.Input != 3 {
		t.Errorf("base changed by Merge: b = %+v", p)
	}
	if _, ok := base.Lookup("d"); ok {
		t.Error("base changed by Merge: has d")
	}
	if p, _ := base.Lookup("c"); p.Model != "c" {
		t.Errorf("base changed by Merge: c = %+v", p)
	}
	if _, ok := over.Lookup("a"); ok {
		t.Error("over changed by Merge: has a")
	}
	// An alias of the extra table may name a model of the base.
	m = base.Merge(mustLoad(t, "aliases: {my-model: b}"))
	if p, ok := m.Lookup("my-model"); !ok || p.Model != "b" {
		t.Errorf("alias into the base: %+v, %v", p, ok)
	}
}

func TestMergeNil(t *testing.T) {
	t.Parallel()
	base := mustLoad(t, "prices: [{model: a, input: 1, output: 2}]")
	for _, m := range []*Table{base.Merge(nil), (*Table)(nil).Merge(base), (&Table{}).Merge(base)} {
		if p, ok := m.Lookup("a"); !ok || p.Input != 1 {
			t.Errorf("Lookup(a) = %+v, %v", p, ok)
		}
	}
	if got := (*Table)(nil).Merge(nil).Prices(); len(got) != 0 {
		t.Errorf("nil.Merge(nil) has prices %v", got)
	}
}

func TestZeroTable(t *testing.T) {
	t.Parallel()
	for _, tab := range []*Table{nil, {}} {
		if _, ok := tab.Lookup("gpt-4o"); ok {
			t.Error("empty table found a price")
		}
		if got := tab.Prices(); got == nil || len(got) != 0 {
			t.Errorf("Prices() = %#v, want an empty slice", got)
		}
	}
}

func TestPricesSorted(t *testing.T) {
	t.Parallel()
	tab := mustLoad(t, `
prices:
  - {model: b, input: 1}
  - {model: C, input: 1}
  - {model: a, input: 1}
aliases: {z: a}
`)
	var names []string
	for _, p := range tab.Prices() {
		names = append(names, p.Model)
	}
	if diff := cmp.Diff([]string{"a", "b", "C"}, names); diff != "" {
		t.Errorf("Prices() order (-want +got):\n%s", diff)
	}
}
