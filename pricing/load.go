package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxFile bounds what Load reads. LiteLLM's file, the largest a user is likely to pass,
// is under 2 MB.
const maxFile = 64 << 20

// Load reads a price table from r. It accepts two formats and tells them apart by their
// content:
//
//   - sluice's own, as in the built-in prices.yaml, in YAML or JSON: a "prices" list of
//     entries with the fields of Price (model is required, the others default to 0 and
//     ""), and an optional "aliases" map from another name to a model. A bare list of
//     entries, as `sluice prices --json` prints, is accepted too. An unknown field is an
//     error, so that a misspelt price is not silently 0.
//   - LiteLLM's model_prices_and_context_window.json: an object keyed by model name whose
//     entries give prices per token in input_cost_per_token, output_cost_per_token,
//     cache_read_input_token_cost, input_cost_per_token_batches and
//     output_cost_per_token_batches (converted to prices per million tokens). The
//     sample_spec entry and entries with neither an input nor an output token price
//     (image, audio and rerank models) are skipped; other fields are ignored.
//
// Errors name the entry and the field at fault.
func Load(r io.Reader) (*Table, error) { return load(r, maxFile) }

// load is Load with a size limit, in bytes (a whole number of MiB).
func load(r io.Reader, limit int64) (*Table, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read prices: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("price file is larger than %d MiB", limit>>20)
	}
	return parse(data)
}

// parse reads a price table in either format.
func parse(data []byte) (*Table, error) {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	text := bytes.TrimLeft(data, " \t\r\n")
	if len(text) == 0 {
		return nil, errors.New("empty price file")
	}
	var doc any
	if text[0] == '{' || text[0] == '[' {
		// JSON. (YAML's flow style starts the same way, but reading a broken JSON file as
		// YAML would accept trailing commas and ignore trailing data, and report the
		// errors it does find in YAML's terms.)
		doc, err := decodeJSON(data)
		if err != nil {
			return nil, err
		}
		if obj, ok := doc.(map[string]any); ok && !isSluice(obj) {
			return parseLiteLLM(obj)
		}
		return parseSluice(doc)
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return parseSluice(doc)
}

// decodeJSON decodes one JSON value, keeping numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if serr, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, jsonError(data, err, serr.Offset-1) // Offset counts the bad byte
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("unexpected end of JSON input")
		}
		return nil, jsonError(data, err, int64(len(data)))
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		rest := data[end:]
		pos := end + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
		return nil, jsonError(data, errors.New("unexpected data after the top-level value"), pos)
	}
	return doc, nil
}

// jsonError gives a JSON decoding error the line and column of the byte at pos.
func jsonError(data []byte, err error, pos int64) error {
	before := data[:min(max(int(pos), 0), len(data))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Errorf("json: line %d, column %d: %w", line, col, err)
}

// isSluice reports whether a JSON object is in sluice's format rather than LiteLLM's.
func isSluice(obj map[string]any) bool {
	_, prices := obj["prices"]
	_, aliases := obj["aliases"]
	return prices || aliases
}

// parseSluice builds a table from a decoded file in sluice's format.
func parseSluice(doc any) (*Table, error) {
	var list, aliases any
	switch d := doc.(type) {
	case nil:
		return nil, errors.New("empty price file")
	case []any:
		list = d
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(d)) {
			if k != "prices" && k != "aliases" {
				return nil, fmt.Errorf(`unknown field %q: want "prices" and "aliases"`, k)
			}
		}
		list, aliases = d["prices"], d["aliases"]
	default:
		return nil, fmt.Errorf(`want a "prices" list, got %s`, describe(doc))
	}
	entries, ok := list.([]any)
	if !ok && list != nil {
		return nil, fmt.Errorf("prices: want a list, got %s", describe(list))
	}

	t := &Table{prices: make(map[string]Price, len(entries)), aliases: map[string]string{}}
	seen := make(map[string]int, len(entries))
	for i, e := range entries {
		p, err := decodeEntry(e)
		label := fmt.Sprintf("prices[%d]", i)
		if p.Model != "" {
			label += fmt.Sprintf(" (%s)", p.Model)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		k := key(p.Model)
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s: model listed twice (also prices[%d])", label, j)
		}
		seen[k] = i
		t.prices[k] = p
	}
	if err := decodeAliases(t, aliases); err != nil {
		return nil, fmt.Errorf("aliases: %w", err)
	}
	return t, nil
}

// decodeEntry decodes one entry of a "prices" list.
func decodeEntry(e any) (Price, error) {
	m, ok := e.(map[string]any)
	if !ok {
		return Price{}, fmt.Errorf("want an object with a model and its prices, got %s", describe(e))
	}
	var p Price
	model, ok := m["model"]
	if !ok {
		return p, errors.New("model: missing")
	}
	s, err := asString(model)
	if err != nil {
		return p, fmt.Errorf("model: %w", err)
	}
	if p.Model = strings.TrimSpace(s); p.Model == "" {
		return p, errors.New("model: must not be empty")
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		var err error
		switch k {
		case "model":
		case "input":
			p.Input, err = asPrice(v)
		case "cached_input":
			p.CachedInput, err = asPrice(v)
		case "output":
			p.Output, err = asPrice(v)
		case "batch_input":
			p.BatchInput, err = asPrice(v)
		case "batch_output":
			p.BatchOutput, err = asPrice(v)
		case "date":
			p.Date, err = asDate(v)
		case "source":
			p.Source, err = asString(v)
		default:
			return p, fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return p, fmt.Errorf("%s: %w", k, err)
		}
	}
	return p, nil
}

// decodeAliases adds the aliases of a file's "aliases" map to t, which holds the file's
// prices. An alias may name a model of another table it is merged with.
func decodeAliases(t *Table, aliases any) error {
	if aliases == nil {
		return nil
	}
	m, ok := aliases.(map[string]any)
	if !ok {
		return fmt.Errorf("want a map from a name to a model, got %s", describe(aliases))
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		target, err := asString(m[name])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		alias, model := key(name), key(target)
		switch {
		case alias == "":
			return errors.New("an alias must not be empty")
		case model == "":
			return fmt.Errorf("%s: must name a model", name)
		case alias == model:
			return fmt.Errorf("%s: names itself", name)
		}
		if _, ok := t.prices[alias]; ok {
			return fmt.Errorf("%s: is also a model with a price", name)
		}
		t.aliases[alias] = model
	}
	return nil
}

// parseLiteLLM builds a table from LiteLLM's model_prices_and_context_window.json.
func parseLiteLLM(doc map[string]any) (*Table, error) {
	t := &Table{prices: make(map[string]Price, len(doc)), aliases: map[string]string{}}
	for _, name := range slices.Sorted(maps.Keys(doc)) {
		if name == "sample_spec" {
			continue
		}
		p, ok, err := litellmEntry(name, doc[name])
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", name, err)
		}
		if ok {
			t.prices[key(name)] = p
		}
	}
	if len(t.prices) == 0 {
		return nil, errors.New(`no "prices" list and no model with input_cost_per_token or output_cost_per_token: ` +
			"want a sluice price table or LiteLLM's model_prices_and_context_window.json")
	}
	return t, nil
}

// litellmSource is the Source of a LiteLLM entry that names none of its own.
const litellmSource = "LiteLLM model_prices_and_context_window.json"

// litellmEntry reads one model of a LiteLLM file. ok is false for an entry with no token
// prices.
func litellmEntry(name string, v any) (p Price, ok bool, err error) {
	m, isObj := v.(map[string]any)
	if !isObj {
		return p, false, fmt.Errorf("want an object, got %s", describe(v))
	}
	fields := []struct {
		name  string
		dst   *float64
		token bool // an input or output price: without one the entry is skipped
	}{
		{"input_cost_per_token", &p.Input, true},
		{"output_cost_per_token", &p.Output, true},
		{"cache_read_input_token_cost", &p.CachedInput, false},
		{"input_cost_per_token_batches", &p.BatchInput, false},
		{"output_cost_per_token_batches", &p.BatchOutput, false},
	}
	for _, f := range fields {
		raw, present := m[f.name]
		if !present || raw == nil {
			continue
		}
		perToken, err := asLiteLLMPrice(raw)
		if err != nil {
			return p, false, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = perMillion(perToken)
		ok = ok || f.token
	}
	p.Model = name
	p.Source = litellmSource
	if s, isStr := m["source"].(string); isStr && strings.HasPrefix(s, "https://") {
		p.Source = s
	}
	return p, ok, nil
}

// asLiteLLMPrice reads a LiteLLM price, which is a number or, in a few entries, a number
// written as a string.
func asLiteLLMPrice(v any) (float64, error) {
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, fmt.Errorf("want a number, got %s", describe(v))
		}
		return checkPrice(f)
	}
	return asPrice(v)
}

// perMillion converts a price per token to a price per million tokens, rounded to 12
// significant digits so that 2.5e-06 becomes 2.5, not 2.4999999999999996.
func perMillion(perToken float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(perToken*1e6, 'g', 12, 64), 64)
	return f
}

// asPrice reads a price: a finite, non-negative number.
func asPrice(v any) (float64, error) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, fmt.Errorf("want a number, got %s", n)
		}
	case float64:
		f = n
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case uint64:
		f = float64(n)
	default:
		return 0, fmt.Errorf("want a number, got %s", describe(v))
	}
	return checkPrice(f)
}

func checkPrice(f float64) (float64, error) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, fmt.Errorf("want a number, got %v", f)
	case f < 0:
		return 0, fmt.Errorf("must not be negative, got %v", f)
	}
	return f, nil
}

// asDate reads a date written YYYY-MM-DD (which YAML decodes as a timestamp).
func asDate(v any) (string, error) {
	switch d := v.(type) {
	case time.Time:
		if d.Hour() == 0 && d.Minute() == 0 && d.Second() == 0 && d.Nanosecond() == 0 {
			return d.Format(time.DateOnly), nil
		}
	case string:
		if _, err := time.Parse(time.DateOnly, d); err == nil || d == "" {
			return d, nil
		}
	}
	return "", fmt.Errorf("want a date as YYYY-MM-DD, got %s", describe(v))
}

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %s", describe(v))
	}
	return s, nil
}

// describe names a decoded value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case float64, int, int64, uint64:
		return fmt.Sprint(x)
	case time.Time:
		return x.Format(time.RFC3339)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
