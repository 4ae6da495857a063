package sluice

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// appendString writes what json.Marshal writes, on its fast path and off it.
func TestAppendStringAsMarshal(t *testing.T) {
	for _, s := range []string{
		"", "b0000001", "req_768d47d51a4d97e6d9fa42e2", `a"b`, `a\b`, "<tag>", "a&b", "tab\there",
		"line\nbreak", "\x00\x1f\x7f", "é", "\xff", "\u2028", "~ !#$%'()*+,-./:;=?@[]^_`{|}",
	} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("appendString(%q) = %s, json.Marshal says %s", s, got[1:], want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("req_0123")
	f.Add("a<b>\"\\\n\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, json.Marshal says %s", s, got, want)
		}
	})
}

// OutputID is sha256 of the job's id and the line's 8 little-endian bytes, cut to 16
// bytes, whatever the length of the job's id.
func TestOutputID(t *testing.T) {
	for _, tc := range []struct {
		job  string
		line int64
	}{{"", 0}, {"job_1", 1}, {"job_1", 1 << 40}, {strings.Repeat("j", 200), 7}, {"job_x", -1}} {
		h := sha256.New()
		h.Write([]byte(tc.job))
		var b [8]byte
		for i := range b {
			b[i] = byte(tc.line >> (8 * i))
		}
		h.Write(b[:])
		want := "batch_req_" + hex.EncodeToString(h.Sum(nil)[:16])
		if got := OutputID(tc.job, tc.line); got != want {
			t.Errorf("OutputID(%q, %d) = %s, want %s", tc.job, tc.line, got, want)
		}
	}
}

func BenchmarkAppendOutputLine(b *testing.B) {
	res := &Result{Line: 12345, CustomID: "b0012345", State: StateDone, StatusCode: 200,
		RequestID: "req_768d47d51a4d97e6d9fa42e2", Body: json.RawMessage(`{"id":"chatcmpl-1","choices":[]}`)}
	var line []byte
	b.ReportAllocs()
	for b.Loop() {
		line = AppendOutputLine(line[:0], "job_0123456789", res)
	}
}
