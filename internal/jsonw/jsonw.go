// Package jsonw writes JSON values into byte slices, as encoding/json writes them, for
// the hot paths where its reflection and allocations cost too much. It imports nothing
// of sluice, so that every package can use it.
package jsonw

import "encoding/json"

// AppendString appends s as a JSON string, byte for byte as json.Marshal writes it. A
// string of printable ASCII that json.Marshal would not escape (ids, model names, as a
// rule) is appended as it is, without json.Marshal's reflection and allocation.
func AppendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				return append(dst, `""`...)
			}
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
