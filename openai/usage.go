package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

// maxTokens bounds a token count read from an answer, so that a garbage value cannot
// overflow the totals it is added to.
const maxTokens = 1 << 50

// usageFields are the token counts of a usage object across the APIs.
type usageFields struct {
	// Chat Completions, Completions, Embeddings.
	PromptTokens, CompletionTokens, TotalTokens float64
	PromptCachedTokens                          float64 // prompt_tokens_details.cached_tokens
	// DeepSeek's prompt-cache hits.
	PromptCacheHitTokens float64
	// Responses.
	InputTokens, OutputTokens, InputCachedTokens float64 // input_tokens_details.cached_tokens
}

// decodeUsage checks that an answer body is valid JSON and reads its usage: the value of
// the top-level "usage" key. It fails only when the body is not valid JSON; a usage
// object of an unexpected shape gives what could be read of it.
//
// Only jsonl.Valid (encoding/json's Valid, in a sixth of its time) checks the body's
// syntax. The usage is then found and read by a light scan that tracks nothing but
// strings and nesting, which costs a fraction of decoding the body into a struct (json.Unmarshal validates, then scans every byte
// again, then decodes by reflection).
func decodeUsage(body []byte) (sluice.Usage, error) {
	u, _, err := decodeAnswer(body)
	return u, err
}

// decodeAnswer is decodeUsage that also returns the value of the body's top-level
// "error" member when the body is an error object rather than an answer (see
// errorMember), nil otherwise. The members are found in the same scan.
func decodeAnswer(body []byte) (sluice.Usage, []byte, error) {
	if !jsonl.Valid(body) {
		var v struct{}
		err := json.Unmarshal(body, &v) // only to say what is wrong with it
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return sluice.Usage{}, nil, err
	}
	var (
		u                      usageFields
		errValue               []byte
		choices, data, outputs bool // of repeated members, the last wins
	)
	forEachMember(body, func(key, value []byte) {
		switch string(key) {
		case "usage":
			u = readUsage(value)
		case "error":
			errValue = value
		case "choices":
			choices = nonEmptyArray(value)
		case "data":
			data = nonEmptyArray(value)
		case "output":
			outputs = nonEmptyArray(value)
		}
	})
	if choices || data || outputs || !errorMember(errValue) {
		errValue = nil
	}
	return u.usage(), errValue, nil
}

// errorMember reports whether v, the value of an answer's top-level "error" member,
// says the request failed: a non-empty object, array or string. Gateways such as
// OpenRouter answer some failures 200 with {"error":{"message","code"}} as the whole
// body, and a failed Responses answer carries its error there, while a good Responses
// answer has "error": null.
func errorMember(v []byte) bool {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) < 2:
		return false // absent, or a number
	case v[0] == '{' || v[0] == '[':
		return len(bytes.TrimSpace(v[1:len(v)-1])) > 0
	default:
		return v[0] == '"' && len(v) > 2
	}
}

// nonEmptyArray reports whether the JSON value v is an array with an element.
func nonEmptyArray(v []byte) bool {
	return len(v) > 2 && v[0] == '[' && len(bytes.TrimSpace(v[1:len(v)-1])) > 0
}

// readUsage reads the counts of a valid JSON usage object. A member that is not a number
// (or an object, for the details) counts as absent; of repeated members, the last wins.
func readUsage(obj []byte) usageFields {
	var u usageFields
	forEachMember(obj, func(key, value []byte) {
		switch string(key) {
		case "prompt_tokens":
			u.PromptTokens = number(value)
		case "completion_tokens":
			u.CompletionTokens = number(value)
		case "total_tokens":
			u.TotalTokens = number(value)
		case "prompt_cache_hit_tokens":
			u.PromptCacheHitTokens = number(value)
		case "input_tokens":
			u.InputTokens = number(value)
		case "output_tokens":
			u.OutputTokens = number(value)
		case "prompt_tokens_details":
			u.PromptCachedTokens = cachedTokens(value)
		case "input_tokens_details":
			u.InputCachedTokens = cachedTokens(value)
		}
	})
	return u
}

// cachedTokens reads cached_tokens from a details object.
func cachedTokens(obj []byte) float64 {
	var n float64
	forEachMember(obj, func(key, value []byte) {
		if string(key) == "cached_tokens" {
			n = number(value)
		}
	})
	return n
}

// number is the value of a JSON number, 0 for any other value or one out of range.
func number(v []byte) float64 {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0
	}
	return f
}

// usage turns the counts of any API into a sluice.Usage.
func (u *usageFields) usage() sluice.Usage {
	prompt := firstNonZero(u.PromptTokens, u.InputTokens)
	completion := firstNonZero(u.CompletionTokens, u.OutputTokens)
	if prompt == 0 && u.TotalTokens > completion { // servers that report only a total
		prompt = u.TotalTokens - completion
	}
	cached := max(u.PromptCachedTokens, u.PromptCacheHitTokens, u.InputCachedTokens)
	out := sluice.Usage{
		PromptTokens:     tokens(prompt),
		CompletionTokens: tokens(completion),
		CachedTokens:     tokens(cached),
	}
	out.CachedTokens = min(out.CachedTokens, out.PromptTokens)
	return out
}

// forEachMember calls fn with the name and the raw value (spaces trimmed) of each member
// of the JSON object obj, in order; it does nothing when obj is not an object. Names
// with escapes are unescaped. obj must be valid JSON.
func forEachMember(obj []byte, fn func(key, value []byte)) {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		return
	}
	var (
		depth int
		key   []byte
		start = -1 // where the current member's value starts
	)
	for i := 0; i < len(obj); i++ {
		switch c := obj[i]; c {
		case '"':
			end := stringEnd(obj, i)
			if depth == 1 && start < 0 { // a member's name
				key = obj[i+1 : end]
				if bytes.IndexByte(key, '\\') >= 0 {
					key = []byte(unquote(obj[i : end+1]))
				}
				j := end + 1
				for obj[j] != ':' {
					j++
				}
				start, end = j+1, j
			}
			i = end
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 1 && start >= 0 {
				fn(key, bytes.TrimSpace(obj[start:i]))
			}
			depth--
		case ',':
			if depth == 1 {
				fn(key, bytes.TrimSpace(obj[start:i]))
				start = -1
			}
		}
	}
}

// unquote is the value of the JSON string q.
func unquote(q []byte) string {
	var s string
	_ = json.Unmarshal(q, &s)
	return s
}

// stringEnd returns the index of the quote that closes the string whose opening quote
// is at data[i].
func stringEnd(data []byte, i int) int {
	for {
		j := bytes.IndexByte(data[i+1:], '"')
		if j < 0 {
			return len(data) - 1 // cannot happen in valid JSON
		}
		i += 1 + j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := i - 1; k >= 0 && data[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
	}
}

func firstNonZero(a, b float64) float64 {
	if a != 0 {
		return a
	}
	return b
}

// tokens converts a count read as a float: negative and not-a-number become 0, huge
// values are capped.
func tokens(f float64) int64 {
	if !(f > 0) { // also NaN, which JSON cannot carry but a caller might
		return 0
	}
	return int64(math.Min(math.Round(f), maxTokens))
}
