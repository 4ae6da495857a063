package main

import (
	"errors"
	"strings"

	"github.com/sluice-llm/sluice/service"
)

// keysSyntax documents the entries of $SLUICE_API_KEYS, for --help and the errors.
const keysSyntax = `Each comma-separated entry of ` + clientKeysEnv + ` is KEY or NAME=KEY. NAME is 1 to 64
letters, digits, '_', '.' or '-', and KEY must not start with '=': so a key with base64
padding ("c2stc2VjcmV0LWtleTEyMw==") is read as one whole key, while
"alice=c2stc2VjcmV0LWtleTEyMw==" names it alice. An entry that starts with '=' is the
unnamed key after it ("=abc=def" is the key "abc=def"): write any key whose text before
an '=' could pass for a name that way, and a key that ends in a single '=' after such
text ("YWJjZGU=" is refused as ambiguous with a named empty key). An unnamed key is
named "key-" and the first 8 hex digits of its SHA-256. Only hashes and names are kept.`

// maxKeyName is the longest key name.
const maxKeyName = 64

// parseKeyEntry reads one entry of $SLUICE_API_KEYS (see keysSyntax), already trimmed and
// not empty. The name is empty for an unnamed key. Errors never quote the entry: it
// holds a secret.
func parseKeyEntry(entry string) (name, key string, err error) {
	if rest, ok := strings.CutPrefix(entry, "="); ok {
		key = strings.TrimSpace(rest)
		if key == "" {
			return "", "", errors.New("an entry is only '='")
		}
		return "", key, nil
	}
	before, after, found := strings.Cut(entry, "=")
	before, after = strings.TrimSpace(before), strings.TrimSpace(after)
	switch {
	case !found, !isKeyName(before), strings.HasPrefix(after, "="):
		return "", entry, nil // no name: a key, maybe with base64 padding
	case after == "":
		// Not quoted: the text may be a key with one '=' of padding.
		return "", "", errors.New("a name with an empty key, or a key that ends in one '=' (write such a key as =KEY)")
	}
	return before, after, nil
}

// isKeyName reports whether s may be a key's name.
func isKeyName(s string) bool {
	if s == "" || len(s) > maxKeyName {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// clientKeys reads the comma-separated keys of v (see keysSyntax) and gives them their
// budgets from cfg. A key with no name is named after its hash.
func clientKeys(v string, cfg *serveConfig) ([]service.Key, error) {
	var keys []service.Key
	names := map[string]bool{}
	hashes := map[string]bool{}
	n := 0
	for entry := range strings.SplitSeq(v, ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		n++
		name, key, err := parseKeyEntry(entry)
		if err != nil {
			return nil, usageError("%s: entry %d: %v\n%s", clientKeysEnv, n, err, keysSyntax)
		}
		k := service.Key{Name: name, Hash: service.HashKey(key)}
		if name == "" {
			k.Name = "key-" + k.Hash[:8]
		}
		if names[k.Name] {
			return nil, usageError("%s: two keys are named %q", clientKeysEnv, k.Name)
		}
		if hashes[k.Hash] {
			return nil, usageError("%s: entry %d: the same key is given twice", clientKeysEnv, n)
		}
		names[k.Name], hashes[k.Hash] = true, true
		if b, ok := cfg.Budgets[k.Name]; ok {
			k.Budget = b.budget()
		} else if cfg.DefaultBudget != nil {
			k.Budget = cfg.DefaultBudget.budget()
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, usageError("no client keys: set %s to the comma-separated keys clients must present", clientKeysEnv)
	}
	for name := range cfg.Budgets {
		if !names[name] {
			return nil, usageError("config: budgets: no key named %q in %s (name the keys: name=key,...)", name, clientKeysEnv)
		}
	}
	return keys, nil
}
