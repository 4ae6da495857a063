// Package modelname is the one rule by which sluice reads a model name, shared by the
// tokenizer choice (tokens), the price lookup (pricing) and the cost estimate (estimate),
// so that a name means the same model to all three.
//
// A name is compared trimmed and in lower case ([Key]). Everything up to its last "/" is a
// provider or router prefix ("openai/", "azure/", "openrouter/openai/", "models/"), and
// [Bare] drops it: "azure/gpt-4o" is gpt-4o. [Base] also drops a fine-tune's "ft:" prefix,
// for what depends only on the base model (its tokenizer); a price does not, so pricing
// uses Bare.
package modelname

import "strings"

// Key is the form model names are compared in: trimmed and in lower case.
func Key(model string) string { return strings.ToLower(strings.TrimSpace(model)) }

// Bare is Key(model) without a provider prefix: what follows its last "/".
func Bare(model string) string {
	k := Key(model)
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		return k[i+1:]
	}
	return k
}

// Base is Bare(model) without a fine-tune's "ft:" prefix: "ft:gpt-4o-mini:org::id" is
// based on gpt-4o-mini (and the rest of the name follows it).
func Base(model string) string { return strings.TrimPrefix(Bare(model), "ft:") }

// InFamily reports whether Base(model) belongs to one of families. A family ending in
// "-" matches any name that starts with it ("gpt-" matches "gpt-4o"); any other family
// matches the name itself or the name followed by "-" or ":" (a variant, a snapshot or a
// fine-tune's suffix), so that "gpt-4" matches "gpt-4-0613" but not "gpt-4o", and "o1"
// matches "o1-mini" but not "o1x". Families are written in lower case.
func InFamily(model string, families []string) bool {
	m := Base(model)
	for _, f := range families {
		rest, ok := strings.CutPrefix(m, f)
		if !ok {
			continue
		}
		if strings.HasSuffix(f, "-") || rest == "" || rest[0] == '-' || rest[0] == ':' {
			return true
		}
	}
	return false
}
