package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

// maxResultLine is the longest line of an output or error file ReadBatchResults reads:
// 256 MiB, room for an answer of tens of MB and then some. A longer line is an Invalid
// result, skipped without being held in memory.
const maxResultLine = 256 << 20

// maxQuoted is how much of a field's value an Invalid reason quotes.
const maxQuoted = 64

// ReadBatchResults reads a Batch API output or error file, JSON Lines of the form
//
//	{"id": "batch_req_123", "custom_id": "request-2", "response": {"status_code": 200, "request_id": "req_123", "body": {...}}, "error": null}
//	{"id": "batch_req_456", "custom_id": "request-3", "response": null, "error": {"code": "batch_expired", "message": "..."}}
//
// and calls fn with each line's result, in file order. It holds one line at a time, of any
// length up to 256 MiB; a result's Body is its own copy. Blank lines are skipped and a
// "\r" before a line's "\n" is ignored.
//
// It reads what providers and gateways really write: an error code that is a number
// ("429"), a status_code that is a string, a body that is a JSON string holding JSON
// (taken as that JSON) or plain text (kept as a JSON string), a 2xx response with no body.
// Usage is read from the body of a 2xx response.
//
// A line that cannot stand for a request's outcome is still given to fn, as a result with
// only Line, Invalid saying why (naming the field at fault) and CustomID when it could be
// read: a line that is not a JSON object, is cut off (the last line of a dropped
// download), is longer than 256 MiB, has no string custom_id, a response that is not an
// object or has no HTTP status_code, or neither a response nor an error. Reading goes on
// with the next line.
//
// An error reading r is returned wrapped, naming the line it was reading; an error from
// fn stops the reading and is returned as it is.
func ReadBatchResults(r io.Reader, fn func(*sluice.BatchResult) error) error {
	return readBatchResults(r, maxResultLine, fn)
}

// readBatchResults is ReadBatchResults with a line limit, so that tests can lower it.
func readBatchResults(r io.Reader, maxLine int, fn func(*sluice.BatchResult) error) error {
	lr := jsonl.NewReader(r, maxLine)
	for {
		n, data, err := lr.Next()
		var res *sluice.BatchResult
		switch le, tooLong := errors.AsType[*sluice.LineError](err); {
		case tooLong:
			res = &sluice.BatchResult{Line: le.Line, Invalid: le.Msg}
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			// The reader says "read line N: ..."; name the line once, our way.
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			return fmt.Errorf("read batch results: line %d: %w", n+1, err)
		default:
			res = parseResult(n, data)
		}
		if err := fn(res); err != nil {
			return err
		}
	}
}

// parseResult reads the result line n, data. A line it cannot read gives a result with
// only Line, CustomID and Invalid.
func parseResult(n int64, data []byte) *sluice.BatchResult {
	res := &sluice.BatchResult{Line: n}
	if why := fillResult(res, data); why != "" {
		*res = sluice.BatchResult{Line: n, CustomID: res.CustomID, Invalid: why}
	}
	return res
}

// fillResult fills res from a result line, and returns why the line is invalid ("" when
// it is not).
func fillResult(res *sluice.BatchResult, data []byte) string {
	if !jsonl.Valid(data) {
		res.CustomID = peekCustomID(data)
		return invalidJSON(data)
	}
	if k := jsonKind(data); k != "object" {
		return "line is a JSON " + k + ", not an object"
	}
	var customID, response, lineErr []byte // nil when absent
	forEachMember(data, func(key, value []byte) {
		switch string(key) {
		case "custom_id":
			customID = value
		case "response":
			response = value
		case "error":
			lineErr = value
		}
	})
	var why string
	if res.CustomID, why = readCustomID(customID); why != "" {
		return why
	}
	if why := readResponse(res, response); why != "" {
		return why
	}
	if isNull(lineErr) {
		if res.StatusCode == 0 {
			return "neither a response nor an error"
		}
		return ""
	}
	res.ErrorCode, res.ErrorMessage = readLineError(lineErr)
	return ""
}

// readCustomID reads the custom_id member's value (nil when absent): it must be a
// string, not empty.
func readCustomID(v []byte) (id, why string) {
	switch {
	case isNull(v):
		return "", "custom_id: missing"
	case v[0] != '"':
		return "", "custom_id: must be a string, got " + jsonKind(v)
	}
	if id = stringValue(v); id == "" {
		return "", "custom_id: empty"
	}
	return id, ""
}

// readResponse fills res's StatusCode, RequestID, Body and Usage from the response
// member's value (nil when absent), and returns why it is invalid.
func readResponse(res *sluice.BatchResult, v []byte) string {
	if isNull(v) {
		return ""
	}
	if k := jsonKind(v); k != "object" {
		return "response: must be an object or null, got " + k
	}
	var status, body []byte
	forEachMember(v, func(key, value []byte) {
		switch string(key) {
		case "status_code":
			status = value
		case "request_id":
			res.RequestID = stringValue(value)
		case "body":
			body = value
		}
	})
	if isNull(status) {
		return "response.status_code: missing"
	}
	code, ok := statusCode(status)
	if !ok {
		return "response.status_code: must be an HTTP status, got " + clip(oneLine(string(status)), maxQuoted)
	}
	res.StatusCode = code
	if !isNull(body) {
		res.Body = ownBody(body)
	}
	if code/100 == 2 && res.Body != nil {
		res.Usage, _ = decodeUsage(res.Body) // valid JSON: it cannot fail
	}
	return ""
}

// statusCode reads an HTTP status sent as a JSON number or as a string holding one.
func statusCode(v []byte) (int, bool) {
	s := string(v)
	if v[0] == '"' {
		s = strings.TrimSpace(stringValue(v))
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 100 && n <= 599
}

// ownBody returns a copy of a response's body, valid JSON. A JSON string that holds a
// JSON object or array (as some gateways send bodies) gives that JSON; any other string
// (plain text) stays a JSON string.
func ownBody(v []byte) json.RawMessage {
	if v[0] == '"' {
		inner := bytes.TrimSpace([]byte(stringValue(v)))
		if len(inner) > 0 && (inner[0] == '{' || inner[0] == '[') && jsonl.Valid(inner) {
			return inner
		}
	}
	return bytes.Clone(v)
}

// readLineError reads a line's error member: an object with code (a string or a number)
// and message, or, leniently, a bare message; any other value is kept as the message.
func readLineError(v []byte) (code, msg string) {
	switch v[0] {
	case '"':
		return "", stringValue(v)
	case '{':
		forEachMember(v, func(key, value []byte) {
			switch string(key) {
			case "code":
				code = codeText(value)
			case "message":
				msg = scalar(value)
			}
		})
		return code, msg
	}
	return "", clip(oneLine(string(v)), maxMessage)
}

// codeText is an error code as text: a string's value, or a number in decimal ("429").
func codeText(v []byte) string {
	switch {
	case v[0] == '"':
		return stringValue(v)
	case v[0] != '-' && (v[0] < '0' || v[0] > '9'):
		return "" // null, true, an object
	}
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return strconv.FormatInt(n, 10)
	}
	f, err := strconv.ParseFloat(string(v), 64)
	switch {
	case err != nil: // out of range
		return string(v)
	case f == math.Trunc(f) && math.Abs(f) < 1<<53:
		return strconv.FormatInt(int64(f), 10)
	default:
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
}

// invalidJSON says why a line that is not valid JSON is not.
func invalidJSON(data []byte) string {
	var v struct{}
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se) && se.Offset >= int64(len(data)):
		return fmt.Sprintf("line is cut off after %d bytes", len(data))
	case err != nil:
		return "line is not valid JSON: " + err.Error()
	}
	return "line is not valid JSON"
}

// peekCustomID reads the custom_id of a line that is not valid JSON, as far as the line
// can be read: "" when it cannot be reached.
func peekCustomID(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		t, err := dec.Token()
		key, ok := t.(string)
		if err != nil || !ok {
			return ""
		}
		if key == "custom_id" {
			t, _ := dec.Token()
			id, _ := t.(string)
			return id
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// jsonKind names the type of a valid JSON value, for messages.
func jsonKind(v []byte) string {
	switch bytes.TrimSpace(v)[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// isNull reports whether a member's value is absent (nil) or null.
func isNull(v []byte) bool { return v == nil || string(v) == "null" }
