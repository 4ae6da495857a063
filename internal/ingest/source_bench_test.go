package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/sluice-llm/sluice/tokens"
)

// benchInput is lines request lines of the endpoints' usual shapes, one per line.
func benchInput(lines int) []byte {
	var in bytes.Buffer
	for i := range lines {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&in, `{"custom_id":"chat-%07d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a careful assistant. Answer in one short paragraph."},{"role":"user","content":"Summarise the following review and say whether it is positive: \"The kettle boils fast, but the lid broke after a week.\" (item %d)"}],"max_tokens":200,"temperature":0.2}}`, i, i)
		case 1:
			fmt.Fprintf(&in, `{"custom_id":"parts-%07d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"What is in this image? (%d)"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}}]}],"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}]}}`, i, i)
		case 2:
			fmt.Fprintf(&in, `{"custom_id":"emb-%07d","method":"POST","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":["first text %d","second text, a little longer"]}}`, i, i)
		case 3:
			fmt.Fprintf(&in, `{"custom_id":"resp-%07d","method":"POST","url":"/v1/responses","body":{"model":"gpt-4o-mini","instructions":"Be brief.","input":"Write a haiku about the number %d.","max_output_tokens":100}}`, i, i)
		}
		in.WriteByte('\n')
	}
	return in.Bytes()
}

// BenchmarkSource measures the ingest path: reading, validating and estimating lines.
func BenchmarkSource(b *testing.B) {
	const lines = 1000
	in := benchInput(lines)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewSource(bytes.NewReader(in), tokens.Default())
		n := 0
		for {
			r, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			n++
		}
		if n != lines {
			b.Fatalf("read %d lines, want %d", n, lines)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
