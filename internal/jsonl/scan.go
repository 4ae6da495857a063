package jsonl

import (
	"bytes"
	"encoding/json"
)

// The helpers in this file walk JSON text that Valid has already accepted. They do
// not check it again, so they are short and fast, and must never see unchecked input.

// object iterates over the members of one JSON object.
type object struct {
	b []byte
	i int
}

// newObject starts an iteration over the object that begins at b[i] == '{'.
func newObject(b []byte, i int) object { return object{b: b, i: i + 1} }

// next returns the next member's key, as raw string content (escapes not decoded), and
// its value, as raw JSON text. ok is false after the last member.
func (o *object) next() (key, val []byte, ok bool) {
	b := o.b
	i, more := nextStart(b, o.i, '}')
	if !more {
		o.i = i
		return nil, nil, false
	}
	end := skipString(b, i)
	key = b[i+1 : end-1]
	i = skipSpace(b, end) // at ':'
	i = skipSpace(b, i+1)
	end = skipValue(b, i)
	o.i = end
	return key, b[i:end], true
}

// nextStart returns where the next member or element of the object or array being read
// at b[i:] starts, past space and a comma. more is false, and start just past it, when
// the next byte is closing, the object's or array's end.
func nextStart(b []byte, i int, closing byte) (start int, more bool) {
	i = skipSpace(b, i)
	if b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if b[i] == closing {
		return i + 1, false
	}
	return i, true
}

// keyIs reports whether raw key content equals name once its escapes are decoded.
func keyIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == name
	}
	return unquote(key) == name
}

// str returns the Go string a raw JSON string value (quotes included) stands for.
func str(val []byte) string {
	content := val[1 : len(val)-1]
	if bytes.IndexByte(content, '\\') < 0 {
		return string(content)
	}
	return unquote(content)
}

// unquote decodes the escapes of raw string content.
func unquote(content []byte) string {
	quoted := make([]byte, 0, len(content)+2)
	quoted = append(append(append(quoted, '"'), content...), '"')
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		// Unreachable for text Valid accepted.
		return string(content)
	}
	return s
}

// kind names the JSON type of a raw value, for error messages.
func kind(val []byte) string {
	switch val[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// skipSpace returns the index of the first byte at or after i that is not JSON
// whitespace, or len(b).
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that begins at b[i] == '"'.
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		i += j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := i - 1; b[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i
		}
	}
}

// skipValue returns the index just past the value that begins at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // a number, true, false or null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
