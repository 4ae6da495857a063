package gateway

import (
	"bytes"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/sluice-llm/sluice/internal/jsonw"
)

// str is b as a string, without a copy: b must not change while the string, or any
// gjson.Result parsed from it, is in use. The gateway's bodies are never changed once
// read.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// fields are what the gateway reads of a request body: one pass over its top-level
// members, never a decode of the whole body.
type fields struct {
	model       gjson.Result // the raw "model" member, for its position when renamed
	stream      bool
	user        string
	maxOutput   int64
	temperature *float64
	seed        bool
	// streamOptions is set when the body has a stream_options member.
	streamOptions bool
}

// scan reads a request body's fields; ok is false when the body is not a JSON object.
func scan(body []byte) (f fields, ok bool) {
	root := gjson.Parse(str(body))
	if !root.IsObject() {
		return f, false
	}
	root.ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "model":
			f.model = value
		case "stream":
			f.stream = value.Type == gjson.True
		case "user":
			f.user = value.Str
		case "max_tokens", "max_completion_tokens", "max_output_tokens":
			if n := value.Int(); value.Type == gjson.Number && n > 0 && (f.maxOutput == 0 || n < f.maxOutput) {
				f.maxOutput = n
			}
		case "temperature":
			if value.Type == gjson.Number {
				t := value.Num
				f.temperature = &t
			}
		case "seed":
			f.seed = value.Type == gjson.Number
		case "stream_options":
			f.streamOptions = true
		}
		return true
	})
	return f, true
}

// deterministic reports whether the same request should get the same answer: a
// temperature of 0 or a seed.
func (f *fields) deterministic() bool {
	return f.seed || (f.temperature != nil && *f.temperature == 0)
}

// withModel returns body with its top-level model replaced by model, into dst: the bytes
// around the old value are copied as they are.
func withModel(dst, body []byte, old gjson.Result, model string) []byte {
	if old.Index <= 0 || old.Index+len(old.Raw) > len(body) {
		return append(dst, body...) // no model member to rename (cannot happen past route)
	}
	dst = append(dst, body[:old.Index]...)
	dst = jsonw.AppendString(dst, model)
	return append(dst, body[old.Index+len(old.Raw):]...)
}

// usageOption is the member withUsageOption adds.
const usageOption = `"stream_options":{"include_usage":true}`

// withUsageOption returns body with stream_options.include_usage set, into dst, so that a
// stream ends with its usage: the member is added after the opening brace.
func withUsageOption(dst, body []byte) []byte {
	i := 0
	for i < len(body) && body[i] != '{' {
		i++
	}
	dst = append(dst, body[:i+1]...)
	dst = append(dst, usageOption...)
	rest := body[i+1:]
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\n' || rest[j] == '\t' || rest[j] == '\r') {
		j++
	}
	if j < len(rest) && rest[j] != '}' {
		dst = append(dst, ',')
	}
	return append(dst, rest...)
}

var usageName = []byte(`"usage"`)

// answerUsage returns the top-level usage member of a whole answer (not streamed). An
// answer ends with it or a few short members after it, so the last "usage" key is tried
// first, and taken when the object holding it closes the answer (then it is the
// top-level one); otherwise the answer is parsed from its start.
func answerUsage(data []byte) gjson.Result {
	if i := bytes.LastIndex(data, usageName); i > 0 {
		rest := bytes.TrimLeft(data[i+len(usageName):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			rest = bytes.TrimLeft(rest[1:], " \t\r\n")
			if n := closing(rest, 0); n > 0 && rest[0] == '{' {
				if m := closing(rest[n:], 1); m > 0 && len(bytes.TrimSpace(rest[n+m:])) == 0 {
					return gjson.Parse(str(rest[:n]))
				}
			}
		}
	}
	return gjson.Get(str(data), "usage")
}

// closing returns the length of b up to the bracket that closes the depth brackets open
// before it (depth 0: the object or array b starts with), strings skipped; 0 when b
// does not close them.
func closing(b []byte, depth int) int {
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++ // the escaped character
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return 0
			}
		}
	}
	return 0
}

// readUsage reads a usage object of any of the APIs (prompt/completion tokens, or
// input/output tokens of the Responses API).
func readUsage(u gjson.Result) (prompt, completion, cached int64) {
	if !u.IsObject() {
		return 0, 0, 0
	}
	u.ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "prompt_tokens", "input_tokens":
			prompt = value.Int()
		case "completion_tokens", "output_tokens":
			completion = value.Int()
		case "prompt_tokens_details", "input_tokens_details":
			cached = value.Get("cached_tokens").Int()
		}
		return true
	})
	return prompt, completion, cached
}
