package pricing

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultEntries(t *testing.T) {
	t.Parallel()
	prices := Default().Prices()
	if len(prices) < 40 {
		t.Fatalf("default table has %d models", len(prices))
	}
	// Providers that document a 50% Batch API discount; the others must record none.
	batchSources := map[string]bool{
		"https://platform.openai.com/docs/pricing":                true,
		"https://docs.anthropic.com/en/docs/about-claude/pricing": true,
		"https://ai.google.dev/gemini-api/docs/pricing":           true,
	}
	for _, p := range prices {
		embedding := strings.Contains(p.Model, "embed")
		if d, err := time.Parse(time.DateOnly, p.Date); err != nil || d.Year() < 2025 {
			t.Errorf("%s: date %q is not a recent YYYY-MM-DD", p.Model, p.Date)
		}
		if !strings.HasPrefix(p.Source, "https://") {
			t.Errorf("%s: source %q is not an https URL", p.Model, p.Source)
		}
		if p.Input <= 0 || (p.Output <= 0 && !embedding) {
			t.Errorf("%s: input %v, output %v: want both positive (output may be 0 for embeddings)", p.Model, p.Input, p.Output)
		}
		if embedding && (p.Output != 0 || p.BatchOutput != 0) {
			t.Errorf("%s: an embedding model with an output price", p.Model)
		}
		if p.CachedInput >= p.Input {
			if p.CachedInput != 0 {
				t.Errorf("%s: cached input %v is no cheaper than input %v", p.Model, p.CachedInput, p.Input)
			}
		}
		switch {
		case p.BatchInput == 0 && p.BatchOutput == 0:
		case !batchSources[p.Source]:
			t.Errorf("%s: batch price from %s, which documents no batch discount", p.Model, p.Source)
		case p.BatchInput != p.Input/2 || p.BatchOutput != p.Output/2:
			t.Errorf("%s: batch %v/%v is not half of %v/%v", p.Model, p.BatchInput, p.BatchOutput, p.Input, p.Output)
		}
	}
}

func TestDefaultAliases(t *testing.T) {
	t.Parallel()
	tab := Default()
	if len(tab.aliases) == 0 {
		t.Fatal("no aliases")
	}
	for alias, target := range tab.aliases {
		if _, ok := tab.prices[target]; !ok {
			t.Errorf("alias %s names %s, which has no price", alias, target)
		}
	}
}

func TestDefaultCoversCommonModels(t *testing.T) {
	t.Parallel()
	models := []string{
		"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3", "o3-mini",
		"o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-3.5-turbo", "text-embedding-3-small",
		"text-embedding-3-large", "text-embedding-ada-002",
		"claude-3-5-sonnet", "claude-3-5-haiku", "claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4",
		"claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5",
		"gemini-1.5-flash", "gemini-1.5-pro", "gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro",
		"deepseek-chat", "deepseek-reasoner",
		"qwen-plus", "qwen-max", "qwen-turbo", "qwen-flash",
		"mistral-large", "mistral-small", "codestral",
	}
	for _, m := range models {
		if p, ok := Default().Lookup(m); !ok || p.Model != m {
			t.Errorf("no entry of its own for %s (got %+v)", m, p)
		}
	}
}

func TestDefaultIsShared(t *testing.T) {
	t.Parallel()
	if a, b := Default(), Default(); a != b {
		t.Error("Default parses the embedded file more than once")
	}
}

func TestMustParsePanicsOnBrokenFile(t *testing.T) {
	t.Parallel()
	defer func() {
		r := recover()
		msg, _ := r.(string)
		if !strings.Contains(msg, "pricing: embedded prices.yaml is broken: prices[0] (m): unknown field \"ouput\"") { //nolint:misspell // a misspelt field on purpose
			t.Errorf("panic %v, want one naming the file and the problem", r)
		}
	}()
	mustParse("prices.yaml", []byte("prices: [{model: m, ouput: 1}]")) //nolint:misspell // a misspelt field on purpose
	t.Error("no panic")
}
