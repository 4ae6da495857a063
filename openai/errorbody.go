package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/internal/jsonl"
)

// Bounds on what is taken from an error body.
const (
	maxMessage    = 1024     // bytes of an error message kept
	maxField      = 128      // bytes of an error type or code kept
	maxSnippet    = 512      // bytes of a non-JSON body quoted in a message
	maxErrorDepth = 6        // nesting followed into an error body
	maxScan       = 64 << 10 // bytes of a non-JSON body looked at
)

// errorInfo is what an error body says.
type errorInfo struct {
	Type    string
	Code    string // a string even when the upstream sent a number
	Message string
}

// errorFields are the fields an error object may have, across the providers' shapes.
type errorFields struct {
	Error     json.RawMessage `json:"error"`
	Errors    json.RawMessage `json:"errors"`
	Message   json.RawMessage `json:"message"`
	ErrorMsg  json.RawMessage `json:"error_msg"`
	Msg       json.RawMessage `json:"msg"`
	Detail    json.RawMessage `json:"detail"`
	Type      json.RawMessage `json:"type"`
	Code      json.RawMessage `json:"code"`
	ErrorCode json.RawMessage `json:"error_code"`
	Status    json.RawMessage `json:"status"`
}

// parseErrorBody reads the type, code and message from a JSON error body. It knows:
//
//   - OpenAI's {"error":{"message","type","param","code"}}, code a string or a number;
//   - {"error":"text"} (Ollama, some gateways), with a code beside it or not;
//   - {"message":"...","code":...} and {"object":"error","message","type","code"} (vLLM);
//   - {"detail":"..."} and {"detail":[{"msg":...}]} (FastAPI);
//   - arrays such as [{"error":{...}}] (Google's OpenAI layer), where the first element
//     with a message wins, and Google's "status" as the type when there is no type;
//   - {"errors":[{"code","message"}]} (Cloudflare) and {"error_code","error_msg"}.
//
// The innermost error object wins over fields beside it. Fields it cannot find are "".
func parseErrorBody(data []byte) errorInfo {
	var ei errorInfo
	readErrorValue(data, 0, &ei)
	ei.Message = clip(oneLine(ei.Message), maxMessage)
	ei.Type = clip(oneLine(ei.Type), maxField)
	ei.Code = clip(oneLine(ei.Code), maxField)
	return ei
}

// readErrorValue fills the empty fields of ei from the JSON value v.
func readErrorValue(v []byte, depth int, ei *errorInfo) {
	v = bytes.TrimSpace(v)
	if depth > maxErrorDepth || len(v) == 0 {
		return
	}
	switch v[0] {
	case '"':
		setOnce(&ei.Message, scalar(v))
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(v, &items) != nil {
			return
		}
		for i, it := range items {
			if i == 4 || ei.Message != "" {
				break
			}
			readErrorValue(it, depth+1, ei)
		}
	case '{':
		var f errorFields
		if json.Unmarshal(v, &f) != nil {
			return
		}
		readErrorValue(f.Error, depth+1, ei)
		readErrorValue(f.Errors, depth+1, ei)
		for _, m := range [...]json.RawMessage{f.Message, f.ErrorMsg, f.Msg, f.Detail} {
			readErrorValue(m, depth+1, ei)
		}
		setOnce(&ei.Type, stringValue(f.Type))
		setOnce(&ei.Code, scalar(f.Code))
		setOnce(&ei.Code, scalar(f.ErrorCode))
		setOnce(&ei.Type, stringValue(f.Status)) // Google: "status":"RESOURCE_EXHAUSTED"
	}
}

func setOnce(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// stringValue is the value of a JSON string, "" for anything else.
func stringValue(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// scalar is a JSON string's value, or a number's or boolean's literal text ("429"); ""
// for null, objects and arrays.
func scalar(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	switch c := v[0]; {
	case c == '"':
		return stringValue(v)
	case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f':
		if jsonl.Valid(v) && !bytes.Equal(v, []byte("null")) {
			return string(v)
		}
	}
	return ""
}

// modelMissing matches the messages upstreams give for a model they do not serve:
// "The model `x` does not exist", `model "x" not found, try pulling it first`,
// "Model Not Exist", "models/x is not found for API version v1beta".
var modelMissing = regexp.MustCompile(`(?i)\bmodels?\b.*?\b(?:does ?n[o']t exist|not exists?|not found)\b|\b(?:unknown|no such) model\b`)

// isModelNotFound reports whether a JSON error answer says the model does not exist. A
// code or type that says so counts whatever the status (so that an upstream's own
// "model_not_found" code always means what it says); a message only on 400 and 404, so
// that unrelated errors that mention a model are not taken for it.
func isModelNotFound(status int, ei errorInfo) bool {
	switch strings.ToLower(ei.Code) {
	case "model_not_found", "model_not_available", "deploymentnotfound":
		return true
	}
	switch strings.ToLower(ei.Type) {
	case "model_not_found", "invalid_model":
		return true
	}
	return (status == 400 || status == 404) && modelMissing.MatchString(ei.Message)
}

// isHTML reports whether a body should be read as HTML.
func isHTML(contentType string, data []byte) bool {
	if strings.Contains(strings.ToLower(contentType), "html") {
		return true
	}
	return bytes.HasPrefix(bytes.TrimLeftFunc(data, unicode.IsSpace), []byte("<"))
}

// textSnippet is the start of a body as one line of text for a message: HTML tags,
// scripts, styles and comments removed and entities decoded when asHTML, invalid UTF-8
// and control characters replaced, whitespace collapsed, at most n bytes.
func textSnippet(data []byte, asHTML bool, n int) string {
	if len(data) > maxScan {
		data = data[:maxScan]
	}
	s := string(data)
	if asHTML {
		s = html.UnescapeString(stripTags(s))
	}
	return clip(oneLine(s), n)
}

// stripTags removes HTML markup from s, leaving a space where each tag was. The text of
// script and style elements and of comments goes too.
func stripTags(s string) string {
	var b strings.Builder
	b.Grow(len(s) / 2)
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		b.WriteByte(' ')
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "<!--"):
			s = after(s, "-->")
		case hasPrefixFold(s, "<script"):
			s = afterFold(s, "</script")
			s = after(s, ">")
		case hasPrefixFold(s, "<style"):
			s = afterFold(s, "</style")
			s = after(s, ">")
		default:
			s = after(s, ">")
		}
	}
	return b.String()
}

// after returns what follows the first sep in s, "" when there is none.
func after(s, sep string) string {
	if i := strings.Index(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return ""
}

// afterFold is after with ASCII case folding. sep must be lower-case ASCII.
func afterFold(s, sep string) string {
	for i := 0; i+len(sep) <= len(s); i++ {
		if hasPrefixFold(s[i:], sep) {
			return s[i+len(sep):]
		}
	}
	return ""
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case. prefix must
// be lower-case ASCII.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// oneLine replaces invalid UTF-8 and control characters, and collapses whitespace.
func oneLine(s string) string {
	if plain(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// plain reports whether s is printable ASCII with no leading, trailing or repeated
// spaces: already one clean line.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || (c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ')) {
			return false
		}
	}
	return true
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// describeInvalid says why a 2xx body is not valid JSON.
func describeInvalid(data []byte, contentType string, err error) string {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return "empty body"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset >= int64(len(data)) {
		return fmt.Sprintf("truncated after %d bytes", len(data))
	}
	msg := err.Error()
	if s := textSnippet(data, isHTML(contentType, data), maxSnippet/2); s != "" {
		msg += "; body: " + s
	}
	return msg
}
