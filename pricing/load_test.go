package pricing

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

const sampleYAML = `
# A comment.
prices:
  - model: my-model
    input: 1.5
    cached_input: 0.15
    output: 6
    batch_input: 0.75
    batch_output: 3
    date: 2025-10-01
    source: https://example.com/pricing
  - {model: other, input: 0.2, output: 0.8, date: "2025-09-30"}
aliases:
  mine: my-model
`

const sampleJSON = `{
  "prices": [
    {"model": "my-model", "input": 1.5, "cached_input": 0.15, "output": 6, "batch_input": 0.75,
     "batch_output": 3, "date": "2025-10-01", "source": "https://example.com/pricing"},
    {"model": "other", "input": 0.2, "output": 0.8, "date": "2025-09-30"}
  ],
  "aliases": {"mine": "my-model"}
}`

var samplePrices = []Price{
	{Model: "my-model", Input: 1.5, CachedInput: 0.15, Output: 6, BatchInput: 0.75, BatchOutput: 3, Date: "2025-10-01", Source: "https://example.com/pricing"},
	{Model: "other", Input: 0.2, Output: 0.8, Date: "2025-09-30"},
}

func TestLoadSluiceFormat(t *testing.T) {
	t.Parallel()
	for name, text := range map[string]string{
		"yaml":      sampleYAML,
		"json":      sampleJSON,
		"json BOM":  "\xEF\xBB\xBF" + sampleJSON,
		"json tabs": strings.ReplaceAll(sampleJSON, "  ", "\t"),
	} {
		t.Run(name, func(t *testing.T) {
			tab := mustLoad(t, text)
			if diff := cmp.Diff(samplePrices, tab.Prices()); diff != "" {
				t.Errorf("prices (-want +got):\n%s", diff)
			}
			if p, ok := tab.Lookup("Mine"); !ok || p.Model != "my-model" {
				t.Errorf("alias: Lookup(Mine) = %+v, %v", p, ok)
			}
		})
	}
}

func TestLoadRoundTrip(t *testing.T) {
	t.Parallel()
	// What `sluice prices --json` prints, and the same list in YAML, load back as it was.
	want := Default().Prices()
	j, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(map[string]any{"prices": want})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"json": j, "yaml": y} {
		tab, err := Load(strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, tab.Prices()); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", name, diff)
		}
	}
}

func TestLoadLiteLLM(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/litellm_sample.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []Price{
		{Model: "acme-chat-large", Input: 3, CachedInput: 0.3, Output: 15, BatchInput: 1.5, BatchOutput: 7.5, Source: litellmSource},
		{Model: "acme-embed-small", Input: 0.02, BatchInput: 0.01, Source: litellmSource},
		{Model: "acme-legacy-completion", Input: 1.5, Output: 2, Source: litellmSource},
		{Model: "acme/acme-chat-mini-2025-01-31", Input: 1.1, CachedInput: 0.55, Output: 4.4, Source: "https://acme.example/pricing"},
		{Model: "local/free-model", Source: litellmSource},
	}
	if diff := cmp.Diff(want, tab.Prices()); diff != "" {
		t.Errorf("prices (-want +got):\n%s", diff)
	}
	// LiteLLM's names resolve like any other, and merge over the default table.
	m := Default().Merge(tab)
	for name, model := range map[string]string{
		"acme/acme-chat-mini-2025-01-31": "acme/acme-chat-mini-2025-01-31",
		"ACME-CHAT-LARGE":                "acme-chat-large",
		"acme/acme-chat-large-latest":    "acme-chat-large",
		"gpt-4o-mini":                    "gpt-4o-mini",
	} {
		if p, ok := m.Lookup(name); !ok || p.Model != model {
			t.Errorf("Lookup(%q) = %+v, %v; want %s", name, p, ok, model)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, err string
	}{
		{"empty", "", "empty price file"},
		{"blank", " \n\t\n", "empty price file"},
		{"only comments", "# nothing here\n", "empty price file"},
		{"YAML syntax", "prices:\n  - model: a\n input: 1\n", "yaml: line 2: did not find expected key"},
		{"JSON syntax", "{\"prices\": [\n  {\"model\": \"a\",}\n]}", "json: line 2, column 17: invalid character '}' looking for beginning of object key string"},
		{"JSON cut short", `{"prices": [{"model": "a"`, "json: line 1, column 26: unexpected end of JSON input"},
		{"JSON comments", "{\n// prices\n}", "json: line 2, column 1: invalid character '/' looking for beginning of object key string"},
		{"JSON trailing data", `{"prices": []} {}`, "json: line 1, column 16: unexpected data after the top-level value"},
		{"JSON trailing garbage", "[]\n\n  x", "json: line 3, column 3: unexpected data after the top-level value"},
		{"a scalar", "hello", `want a "prices" list, got "hello"`},
		{"unknown top-level field", "price:\n  - model: a\n", `unknown field "price": want "prices" and "aliases"`},
		{"prices not a list", "prices: {model: a}", "prices: want a list, got an object"},
		{"entry not an object", "prices: [gpt-4o]", `prices[0]: want an object with a model and its prices, got "gpt-4o"`},
		{"model missing", "prices: [{input: 1}]", "prices[0]: model: missing"},
		{"model empty", "prices: [{model: ' ', input: 1}]", "prices[0]: model: must not be empty"},
		{"model not a string", "prices: [{model: [a], input: 1}]", "prices[0]: model: want a string, got a list"},
		{"misspelt field", "prices:\n  - {model: a, input: 1}\n  - {model: b, input: 1, ouput: 2}\n", `prices[1] (b): unknown field "ouput"`}, //nolint:misspell // a misspelt field on purpose
		{"negative price", "prices: [{model: a, input: -1}]", "prices[0] (a): input: must not be negative, got -1"},
		{"infinite price", "prices: [{model: a, output: .inf}]", "prices[0] (a): output: want a number, got +Inf"},
		{"price as a string", `prices: [{model: a, output: "1.5"}]`, `prices[0] (a): output: want a number, got "1.5"`},
		{"price null", "prices: [{model: a, batch_input: }]", "prices[0] (a): batch_input: want a number, got null"},
		{"JSON price as a string", `{"prices": [{"model": "a", "cached_input": "x"}]}`, `prices[0] (a): cached_input: want a number, got "x"`},
		{"bad date", "prices: [{model: a, date: Sept 2025}]", `prices[0] (a): date: want a date as YYYY-MM-DD, got "Sept 2025"`},
		{"date with a time", "prices: [{model: a, date: 2025-09-01T10:00:00Z}]", "prices[0] (a): date: want a date as YYYY-MM-DD, got 2025-09-01T10:00:00Z"},
		{"source not a string", "prices: [{model: a, source: 3}]", "prices[0] (a): source: want a string, got 3"},
		{"model listed twice", "prices: [{model: gpt-4o}, {model: x}, {model: GPT-4o}]", "prices[2] (GPT-4o): model listed twice (also prices[0])"},
		{"aliases not a map", "aliases: [a, b]", "aliases: want a map from a name to a model, got a list"},
		{"alias of a priced model", "prices: [{model: a}, {model: b}]\naliases: {a: b}", "aliases: a: is also a model with a price"},
		{"alias to nothing", "aliases: {a: ''}", "aliases: a: must name a model"},
		{"alias to itself", "aliases: {a: A}", "aliases: a: names itself"},
		{"alias target not a string", "aliases: {a: 3}", "aliases: a: want a string, got 3"},
		{"LiteLLM price not a number", `{"gpt-x": {"input_cost_per_token": "abc", "output_cost_per_token": 1e-6}}`, `model "gpt-x": input_cost_per_token: want a number, got "abc"`},
		{"LiteLLM price negative", `{"a": {"input_cost_per_token": 1e-6}, "gpt-x": {"output_cost_per_token_batches": -2e-6}}`, `model "gpt-x": output_cost_per_token_batches: must not be negative, got -2e-06`},
		{"LiteLLM price a boolean", `{"gpt-x": {"cache_read_input_token_cost": true}}`, `model "gpt-x": cache_read_input_token_cost: want a number, got true`},
		{"LiteLLM entry not an object", `{"sample_spec": {}, "gpt-x": 3}`, `model "gpt-x": want an object, got 3`},
		{"neither format", `{"gpt-4o": {"input": 2.5, "output": 10}}`, `no "prices" list and no model with input_cost_per_token or output_cost_per_token: want a sluice price table or LiteLLM's model_prices_and_context_window.json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Load(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("no error, want %q; got prices %+v", tt.err, tab.Prices())
			}
			if err.Error() != tt.err {
				t.Errorf("error:\n got %q\nwant %q", err, tt.err)
			}
		})
	}
}

func TestLoadReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := Load(io.MultiReader(strings.NewReader("prices: []\n"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || err.Error() != "read prices: boom" {
		t.Errorf("error = %v, want read prices: boom", err)
	}
}

// spaces is an endless reader of spaces.
type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestLoadTooLarge(t *testing.T) {
	t.Parallel()
	_, err := load(spaces{}, 1<<20)
	if err == nil || err.Error() != "price file is larger than 1 MiB" {
		t.Errorf("error = %v", err)
	}
	// Exactly at the limit is fine.
	if _, err := load(io.LimitReader(spaces{}, 1<<20), 1<<20); err == nil || err.Error() != "empty price file" {
		t.Errorf("file at the limit: error = %v, want it read (and found empty)", err)
	}
}

func TestLoadEmptyLists(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"prices: []", "aliases: {}", "prices:\naliases:\n", "[]", `{"prices": []}`} {
		tab := mustLoad(t, text)
		if n := len(tab.Prices()); n != 0 {
			t.Errorf("%q: %d prices", text, n)
		}
	}
}

func TestPerMillion(t *testing.T) {
	t.Parallel()
	for perToken, want := range map[float64]float64{
		2.5e-06: 2.5, 1.1e-06: 1.1, 7.5e-08: 0.075, 1.875e-08: 0.01875, 3e-05: 30, 0: 0, 6e-07: 0.6,
	} {
		if got := perMillion(perToken); got != want {
			t.Errorf("perMillion(%g) = %v, want %v", perToken, got, want)
		}
	}
}
