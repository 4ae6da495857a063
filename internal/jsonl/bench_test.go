package jsonl

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"testing"
)

// benchLine is a typical chat request line, about 400 bytes.
func benchLine(i int) []byte {
	return fmt.Appendf(nil, `{"custom_id":"request-%07d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a careful assistant. Answer in one short paragraph."},{"role":"user","content":"Summarise the following review and say whether it is positive: \"The kettle boils fast, but the lid broke after a week.\" (item %d)"}],"max_tokens":200,"temperature":0.2}}`, i, i)
}

// benchImageLine is a vision request line with a 96 KiB image inlined as a data URL.
func benchImageLine() []byte {
	img := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0, 1, 2, 3}, 12<<10))
	return fmt.Appendf(nil, `{"custom_id":"img-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,%s"}}]}]}}`, img)
}

func BenchmarkReader(b *testing.B) {
	const lines = 10_000
	var in bytes.Buffer
	for i := range lines {
		in.Write(benchLine(i))
		in.WriteByte('\n')
	}
	b.SetBytes(int64(in.Len()))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(in.Bytes()), 0)
		n := 0
		for {
			_, _, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != lines {
			b.Fatalf("read %d lines, want %d", n, lines)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkParseRequest(b *testing.B) {
	for _, bc := range []struct {
		name string
		line []byte
	}{
		{"chat", benchLine(1)},
		{"image", benchImageLine()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRequest(1, bc.line); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
