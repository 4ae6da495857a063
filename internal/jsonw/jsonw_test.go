package jsonw

import (
	"encoding/json"
	"testing"
)

// AppendString writes what json.Marshal writes, on its fast path and off it.
func TestAppendStringAsMarshal(t *testing.T) {
	for _, s := range []string{
		"", "b0000001", "req_768d47d51a4d97e6d9fa42e2", `a"b`, `a\b`, "<tag>", "a&b", "tab\there",
		"line\nbreak", "\x00\x1f\x7f", "é", "\xff", "\u2028", "~ !#$%'()*+,-./:;=?@[]^_`{|}",
	} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendString(%q) = %s, json.Marshal says %s", s, got[1:], want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("req_0123")
	f.Add("a<b>\"\\\n\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, json.Marshal says %s", s, got, want)
		}
	})
}
