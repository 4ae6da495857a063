package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

// EstimateValid is Estimate for a request whose Body is known to be valid JSON in valid
// UTF-8, as jsonl.ParseRequest guarantees: it reads the body once, without checking its
// syntax again as encoding/json would. Its result, and its error, are Estimate's. A body
// of an unusual shape (a field of the wrong type, a member name that differs from the
// field's only in case or that has escapes, a repeated member) is handed to Estimate's
// decoder, so that it reports the error Estimate would. Calling it with a body that is not
// valid JSON is a bug: it may panic.
func (e *Estimator) EstimateValid(req *sluice.Request) (sluice.Estimate, error) {
	var b body
	if !decodeValidBody(req.Body, &b) {
		return e.Estimate(req)
	}
	return e.estimate(req, &b, true)
}

// Bits of the fields decodeValidBody has set, to find a repeat.
const (
	fModel = 1 << iota
	fMessages
	fTools
	fFunctions
	fPrompt
	fInput
	fInstructions
	fMaxTokens
	fMaxCompletionTokens
	fMaxOutputTokens
	fN
	fBestOf
)

// bodyNames and messageNames are the JSON names of body's and message's fields, which
// encoding/json also matches case-insensitively.
var (
	bodyNames = [][]byte{
		[]byte("model"), []byte("messages"), []byte("tools"), []byte("functions"),
		[]byte("prompt"), []byte("input"), []byte("instructions"), []byte("max_tokens"),
		[]byte("max_completion_tokens"), []byte("max_output_tokens"), []byte("n"), []byte("best_of"),
	}
	messageNames = [][]byte{
		[]byte("type"), []byte("role"), []byte("name"), []byte("content"), []byte("tool_calls"),
		[]byte("function_call"), []byte("tool_call_id"), []byte("arguments"), []byte("output"),
	}
)

// decodeValidBody decodes valid JSON data into b as json.Unmarshal would, and reports
// whether it could. It gives up (false) wherever encoding/json's result could differ or it
// would return an error: the caller then decodes with json.Unmarshal.
func decodeValidBody(data []byte, b *body) bool {
	if len(data) == 0 {
		return false
	}
	return decodeMembers(data, bodyNames, func(bit int, val []byte) bool {
		switch bit {
		case fModel:
			return decodeString(val, &b.Model)
		case fMessages:
			return decodeMessages(val, &b.Messages)
		case fTools:
			b.Tools = val
		case fFunctions:
			b.Functions = val
		case fPrompt:
			b.Prompt = val
		case fInput:
			b.Input = val
		case fInstructions:
			return decodeStringPtr(val, &b.Instructions)
		case fMaxTokens:
			return decodeInt(val, &b.MaxTokens)
		case fMaxCompletionTokens:
			return decodeInt(val, &b.MaxCompletionTokens)
		case fMaxOutputTokens:
			return decodeInt(val, &b.MaxOutputTokens)
		case fN:
			return decodeInt(val, &b.N)
		case fBestOf:
			return decodeInt(val, &b.BestOf)
		}
		return true
	})
}

// decodeMembers calls set with each member's value of obj, valid JSON text, and the bit
// (1<<i) of its name in names, 0 for a name not there. null has no members, as for
// encoding/json. It gives up (false) on a value that is not an object or null, when set
// does, on a name with escapes or that matches one of names only case-insensitively
// (encoding/json's rules then decide), and on a repeated name.
func decodeMembers(obj []byte, names [][]byte, set func(bit int, val []byte) bool) bool {
	switch obj[0] {
	case 'n':
		return true
	case '{':
	default:
		return false
	}
	var seen int
	for o := jsonl.NewObject(obj); ; {
		key, val, ok := o.Next()
		if !ok {
			return true
		}
		bit := fieldBit(key, names)
		if bit < 0 || seen&bit != 0 || !set(bit, val) {
			return false
		}
		seen |= bit
	}
}

// fieldBit is the bit (1<<i) of the name of names that key is exactly, 0 when key matches
// none of them even case-insensitively, and -1 when it has escapes or matches one only
// case-insensitively.
func fieldBit(key []byte, names [][]byte) int {
	if bytes.IndexByte(key, '\\') >= 0 {
		return -1
	}
	for i, n := range names {
		if bytes.Equal(key, n) {
			return 1 << i
		}
	}
	for _, n := range names {
		if bytes.EqualFold(key, n) {
			return -1
		}
	}
	return 0
}

// decodeMessages decodes an array of messages, or null.
func decodeMessages(val []byte, ms *[]message) bool {
	switch val[0] {
	case 'n':
		*ms = nil
		return true
	case '[':
		return decodeArray(val, ms, decodeMessage)
	default:
		return false
	}
}

// decodeArray decodes valid JSON arr, an array, element by element with decode, and sets
// *dst if every element could be decoded.
func decodeArray[T any](arr []byte, dst *[]T, decode func(val []byte, elem *T) bool) bool {
	out := []T{}
	for a := jsonl.NewArray(arr); ; {
		v, ok := a.Next()
		if !ok {
			*dst = out
			return true
		}
		out = append(out, *new(T))
		if !decode(v, &out[len(out)-1]) {
			return false
		}
	}
}

// decodeMessage decodes a message object, or null (which leaves m zero).
func decodeMessage(val []byte, m *message) bool {
	return decodeMembers(val, messageNames, func(bit int, v []byte) bool {
		switch bit {
		case 1 << 0:
			return decodeString(v, &m.Type)
		case 1 << 1:
			return decodeString(v, &m.Role)
		case 1 << 2:
			return decodeString(v, &m.Name)
		case 1 << 3:
			m.Content = v
		case 1 << 4:
			m.ToolCalls = v
		case 1 << 5:
			m.FunctionCall = v
		case 1 << 6:
			return decodeString(v, &m.ToolCallID)
		case 1 << 7:
			return decodeString(v, &m.Arguments)
		case 1 << 8:
			m.Output = v
		}
		return true
	})
}

// decodeString decodes a string, or null (which leaves s as it is, as encoding/json does).
func decodeString(val []byte, s *string) bool {
	switch val[0] {
	case 'n':
		return true
	case '"':
	default:
		return false
	}
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		*s = string(inner)
		return true
	}
	return json.Unmarshal(val, s) == nil
}

// decodeStringPtr decodes a string, or null (nil).
func decodeStringPtr(val []byte, p **string) bool {
	if val[0] == 'n' {
		*p = nil
		return true
	}
	var s string
	if !decodeString(val, &s) {
		return false
	}
	*p = &s
	return true
}

// decodeInt decodes an integer, or null (nil). A number that is not an int64 (1.5, 1e3,
// 1<<63) is an error for encoding/json, so decodeInt gives up on it.
func decodeInt(val []byte, p **int64) bool {
	if val[0] == 'n' {
		*p = nil
		return true
	}
	n, ok := parseInt(val)
	if !ok {
		return false
	}
	*p = &n
	return true
}

// parseInt parses a JSON number that is an int64, as encoding/json does.
func parseInt(val []byte) (int64, bool) {
	if val[0] != '-' && (val[0] < '0' || val[0] > '9') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(val), 10, 64)
	return n, err == nil
}

// partNames are the JSON names of part's fields, and imageURLNames imageURL's.
var (
	partNames     = [][]byte{[]byte("type"), []byte("text"), []byte("refusal"), []byte("detail"), []byte("image_url")}
	imageURLNames = [][]byte{[]byte("detail")}
)

// decodeValidParts decodes valid JSON val, an array of content parts, as json.Unmarshal
// would, and reports whether it could (see decodeValidBody). It sets *ps only then.
func decodeValidParts(val []byte, ps *[]part) bool {
	return val[0] == '[' && decodeArray(val, ps, decodeValidPart)
}

// decodeValidPart decodes a content part object, or null (which leaves p zero).
func decodeValidPart(val []byte, p *part) bool {
	return decodeMembers(val, partNames, func(bit int, v []byte) bool {
		switch bit {
		case 1 << 0:
			return decodeString(v, &p.Type)
		case 1 << 1:
			return decodeString(v, &p.Text)
		case 1 << 2:
			return decodeString(v, &p.Refusal)
		case 1 << 3:
			return decodeString(v, &p.Detail)
		case 1 << 4:
			return decodeValidImageURL(v, &p.ImageURL)
		}
		return true
	})
}

// decodeValidImageURL decodes an image_url as imageURL.UnmarshalJSON does: only an object
// is read.
func decodeValidImageURL(val []byte, u *imageURL) bool {
	if val[0] != '{' {
		return true
	}
	return decodeMembers(val, imageURLNames, func(bit int, v []byte) bool {
		return bit == 0 || decodeString(v, &u.Detail)
	})
}

// validElements returns the elements of valid JSON arr, an array, as json.Unmarshal into
// a []json.RawMessage would.
func validElements(arr []byte) []json.RawMessage {
	out := []json.RawMessage{}
	for a := jsonl.NewArray(arr); ; {
		v, ok := a.Next()
		if !ok {
			return out
		}
		out = append(out, v)
	}
}

// errNotIDs is countIDs' error: the array is not one of token ids.
var errNotIDs = errors.New("not an array of token ids")

// countIDs counts the token ids of arr, an array, and fails where json.Unmarshal into a
// []int64 would. valid says arr is known to be valid JSON, read without checking it again.
func countIDs(arr []byte, valid bool) (int64, error) {
	if !valid {
		var ids []int64
		if err := json.Unmarshal(arr, &ids); err != nil {
			return 0, err
		}
		return int64(len(ids)), nil
	}
	var n int64
	for a := jsonl.NewArray(arr); ; {
		v, ok := a.Next()
		if !ok {
			return n, nil
		}
		if _, ok := parseInt(v); !ok && v[0] != 'n' { // null is 0
			return 0, errNotIDs
		}
		n++
	}
}
