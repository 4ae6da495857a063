package jsonl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluice-llm/sluice"
)

// MaxCustomID is the longest custom_id, in bytes, ParseRequest accepts. The Batch API
// does not publish a limit; sluice sets one so that the key of every request in the
// ledger, and every output line, stays small.
const MaxCustomID = 512

// maxQuoted bounds how much of an offending value an error message repeats.
const maxQuoted = 64

// endpointList is sluice.Endpoints as error messages list them.
var endpointList = strings.Join(sluice.Endpoints, ", ")

// ParseRequest checks that data, line number line of an input file, is a Batch API
// request line, and returns it. The request's Body is the raw JSON of the body object,
// copied: it does not alias data.
//
// The line must be a JSON object in valid UTF-8 with:
//
//   - custom_id: a non-empty string of at most MaxCustomID bytes
//   - method: "POST" (the only method the Batch API accepts; compared exactly)
//   - url: one of sluice.Endpoints
//   - body: an object whose model member is a non-empty string
//
// Other top-level members are ignored. Member names are matched exactly (unlike
// encoding/json, which also accepts "Custom_ID"). A name that appears twice in the line's
// object, or in the body object, is an error naming it: JSON readers disagree on which
// of the two counts (encoding/json takes the last, others the first), so the request
// sluice would send is not the one its author meant.
//
// The first problem found is returned as a LineError naming the field at fault, checked
// in the order above. Even then the request carries every field that could be read, so
// that the error can be reported against its custom_id.
func ParseRequest(line int64, data []byte) (sluice.Request, *sluice.LineError) {
	var req sluice.Request
	if !utf8.Valid(data) {
		return req, lineErr(line, "", "not valid UTF-8 (at byte %d)", invalidUTF8At(data))
	}
	if !Valid(data) {
		return req, lineErr(line, "", "%s", syntaxError(data))
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return req, lineErr(line, "", "must be a JSON object, got %s", kind(data[i:]))
	}

	var customID, method, url, body []byte
	var seen keySet
	var dup []byte
	for o := newObject(data, i); ; {
		key, val, ok := o.next()
		if !ok {
			break
		}
		if dup == nil && seen.add(key) {
			dup = key
		}
		switch {
		case keyIs(key, "custom_id"):
			customID = val
		case keyIs(key, "method"):
			method = val
		case keyIs(key, "url"):
			url = val
		case keyIs(key, "body"):
			body = val
		}
	}

	if isString(customID) {
		req.CustomID = str(customID)
	}
	if isString(method) {
		req.Method = readMethod(method)
	}
	if isString(url) {
		req.URL = readEndpoint(url)
	}
	if len(body) > 0 && body[0] == '{' {
		req.Body = append(json.RawMessage(nil), body...)
	}

	if dup != nil {
		return req, lineErr(line, fieldName("", dup), "%s", dupMsg)
	}
	if req.Body != nil {
		if dup := duplicateKey(body); dup != nil {
			return req, lineErr(line, fieldName("body.", dup), "%s", dupMsg)
		}
	}
	if err := checkCustomID(line, customID, req.CustomID); err != nil {
		return req, err
	}
	if err := checkString(line, "method", method); err != nil {
		return req, err
	}
	if req.Method != "POST" {
		return req, lineErr(line, "method", `must be "POST", got %s`, quote(req.Method))
	}
	if err := checkString(line, "url", url); err != nil {
		return req, err
	}
	if !isEndpoint(req.URL) {
		return req, lineErr(line, "url", "must be one of %s; got %s", endpointList, quote(req.URL))
	}
	if body == nil {
		return req, lineErr(line, "body", "missing")
	}
	if req.Body == nil {
		return req, lineErr(line, "body", "must be a JSON object, got %s", kind(body))
	}
	return req, checkModel(line, body)
}

func checkCustomID(line int64, raw []byte, id string) *sluice.LineError {
	if err := checkString(line, "custom_id", raw); err != nil {
		return err
	}
	switch {
	case id == "":
		return lineErr(line, "custom_id", "must not be empty")
	case len(id) > MaxCustomID:
		return lineErr(line, "custom_id", "must be at most %d bytes, got %d", MaxCustomID, len(id))
	}
	return nil
}

// checkModel checks the model member of a body object.
func checkModel(line int64, body []byte) *sluice.LineError {
	var model []byte
	for o := newObject(body, 0); ; {
		key, val, ok := o.next()
		if !ok {
			break
		}
		if keyIs(key, "model") {
			model = val
		}
	}
	if err := checkString(line, "body.model", model); err != nil {
		return err
	}
	if len(model) == 2 { // ""
		return lineErr(line, "body.model", "must not be empty")
	}
	return nil
}

// checkString checks that a member is present and a string.
func checkString(line int64, field string, raw []byte) *sluice.LineError {
	switch {
	case raw == nil:
		return lineErr(line, field, "missing")
	case !isString(raw):
		return lineErr(line, field, "must be a string, got %s", kind(raw))
	}
	return nil
}

func isString(raw []byte) bool { return len(raw) > 0 && raw[0] == '"' }

// readMethod decodes a method string, without allocating for the usual "POST".
func readMethod(raw []byte) string {
	if string(raw) == `"POST"` {
		return "POST"
	}
	return str(raw)
}

// readEndpoint decodes a url string, without allocating for a known endpoint.
func readEndpoint(raw []byte) string {
	for _, e := range sluice.Endpoints {
		if len(raw) == len(e)+2 && string(raw[1:len(raw)-1]) == e {
			return e
		}
	}
	return str(raw)
}

func isEndpoint(url string) bool {
	for _, e := range sluice.Endpoints {
		if url == e {
			return true
		}
	}
	return false
}

func lineErr(line int64, field, format string, args ...any) *sluice.LineError {
	return &sluice.LineError{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// quote quotes s for an error message, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// syntaxError describes why data is not valid JSON, with the byte offset where it broke.
func syntaxError(data []byte) string {
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	if serr, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("not valid JSON at byte %d: %v", serr.Offset, serr)
	}
	if err != nil {
		return "not valid JSON: " + err.Error()
	}
	return "not valid JSON"
}

// invalidUTF8At returns the offset of the first byte of data that is not valid UTF-8.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}
