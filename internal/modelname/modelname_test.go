package modelname_test

import (
	"testing"

	"github.com/sluice-llm/sluice/internal/modelname"
)

func TestNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, model     string
		key, bare, base string
	}{
		{name: "plain", model: "gpt-4o", key: "gpt-4o", bare: "gpt-4o", base: "gpt-4o"},
		{name: "case and spaces", model: " GPT-4o-Mini ", key: "gpt-4o-mini", bare: "gpt-4o-mini", base: "gpt-4o-mini"},
		{name: "openai prefix", model: "openai/gpt-4o", key: "openai/gpt-4o", bare: "gpt-4o", base: "gpt-4o"},
		{name: "azure prefix", model: "azure/gpt-4o", key: "azure/gpt-4o", bare: "gpt-4o", base: "gpt-4o"},
		{name: "router and provider", model: "openrouter/openai/gpt-4.1", key: "openrouter/openai/gpt-4.1", bare: "gpt-4.1", base: "gpt-4.1"},
		{name: "fine-tune", model: "ft:gpt-4o-mini:org::abc", key: "ft:gpt-4o-mini:org::abc", bare: "ft:gpt-4o-mini:org::abc", base: "gpt-4o-mini:org::abc"},
		{name: "empty", model: "  ", key: "", bare: "", base: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := modelname.Key(tt.model); got != tt.key {
				t.Errorf("Key(%q) = %q, want %q", tt.model, got, tt.key)
			}
			if got := modelname.Bare(tt.model); got != tt.bare {
				t.Errorf("Bare(%q) = %q, want %q", tt.model, got, tt.bare)
			}
			if got := modelname.Base(tt.model); got != tt.base {
				t.Errorf("Base(%q) = %q, want %q", tt.model, got, tt.base)
			}
		})
	}
}

func TestInFamily(t *testing.T) {
	t.Parallel()
	families := []string{"gpt-", "gpt-4", "o1"}
	tests := []struct {
		model string
		want  bool
	}{
		{"gpt-4o", true},       // "gpt-" is open-ended
		{"azure/gpt-4o", true}, // the prefix is dropped
		{"o1", true},
		{"o1-mini", true},
		{"o1x", false},
		{"O1-Preview-2024-09-12", true},
		{"ft:o1-mini:org::id", true},
		{"o1:custom", true},
		{"claude-3-5-sonnet", false},
		{"my-deployment", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := modelname.InFamily(tt.model, families); got != tt.want {
			t.Errorf("InFamily(%q) = %v, want %v", tt.model, got, tt.want)
		}
	}
	// A closed family matches itself and its variants only.
	if !modelname.InFamily("gpt-4-0613", []string{"gpt-4"}) || modelname.InFamily("gpt-4o", []string{"gpt-4"}) {
		t.Error(`"gpt-4" must match gpt-4-0613 and not gpt-4o`)
	}
}
