package sluice

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

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
