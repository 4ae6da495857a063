package jsonl

import (
	"bytes"
	"unicode/utf8"
)

// dupMsg is the message of a duplicate member name.
const dupMsg = "the key appears more than once in the object (JSON readers disagree on which one counts)"

// keySet holds the member names of one object as they are read, to find one that repeats.
// Names are kept as raw string content, aliasing the line; a name with escapes is compared
// decoded. Objects are small: the first keySetMapAt names are kept in an array, scanned
// linearly, and only a larger object moves them to a map.
type keySet struct {
	buf     [keySetMapAt][]byte
	n       int  // names in buf
	escaped bool // some name in buf has an escape
	m       map[string]struct{}
}

// keySetMapAt is the number of names beyond which a keySet switches to a map.
const keySetMapAt = 16

// add records a member name and reports whether it was there already.
func (s *keySet) add(key []byte) bool {
	esc := bytes.IndexByte(key, '\\') >= 0
	if s.m != nil {
		k := decodedKey(key, esc)
		if _, ok := s.m[k]; ok {
			return true
		}
		s.m[k] = struct{}{}
		return false
	}
	names := s.buf[:s.n]
	if !esc && !s.escaped {
		for _, k := range names {
			if bytes.Equal(k, key) {
				return true
			}
		}
	} else {
		k := decodedKey(key, esc)
		for _, r := range names {
			if decodedKey(r, bytes.IndexByte(r, '\\') >= 0) == k {
				return true
			}
		}
	}
	if s.n < len(s.buf) {
		s.buf[s.n] = key
		s.n++
		s.escaped = s.escaped || esc
		return false
	}
	s.m = make(map[string]struct{}, 4*len(s.buf))
	for _, r := range names {
		s.m[decodedKey(r, bytes.IndexByte(r, '\\') >= 0)] = struct{}{}
	}
	s.m[decodedKey(key, esc)] = struct{}{}
	return false
}

func decodedKey(key []byte, escaped bool) string {
	if escaped {
		return unquote(key)
	}
	return string(key)
}

// duplicateKey returns the first member name of the object obj (valid JSON text starting
// with '{') that repeats an earlier one, as raw string content, or nil.
func duplicateKey(obj []byte) []byte {
	var seen keySet
	for o := newObject(obj, 0); ; {
		key, _, ok := o.next()
		if !ok {
			return nil
		}
		if seen.add(key) {
			return key
		}
	}
}

// fieldName names a member in an error: prefix and the decoded name, cut to maxQuoted
// bytes.
func fieldName(prefix string, key []byte) string {
	return prefix + cutName(decodedKey(key, bytes.IndexByte(key, '\\') >= 0))
}

// cutName cuts a member name to maxQuoted bytes for an error message.
func cutName(name string) string {
	if len(name) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + "..."
	}
	return name
}
