package jsonl

import (
	"encoding/json"
	"strings"
	"testing"
)

// validCases are JSON texts at the edges of the grammar, each with encoding/json's
// answer: Valid must give the same.
var validCases = []string{
	``, ` `, `0`, `-0`, `-`, `01`, `-01`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`,
	`1.5e3`, `1.e3`, `-1.0e-0`, `+1`, `0x1`, `1 2`, ` 1 `, "\t\n\r1\r\n\t", "\f1", `NaN`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `True`,
	`""`, `"`, `"a`, `"\"`, `"\\"`, `"\/\b\f\n\r\t"`, `"\u00e9"`, `"\u00E"`, `"\u00eg"`, `"\x"`,
	`"\'"`, "\"a\x01b\"", "\"a\x7fb\"", "\"\xff\xfe\"", "\"tab\there\"", `"é"`,
	`{}`, `{ }`, `{"a":1}`, `{"a" : 1 , "b":[]}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1,}`,
	`{,"a":1}`, `{"a":1 "b":2}`, `{"a":1]`, `{1:2}`, `{"a":{"b":{"c":[1,{"d":null}]}}}`,
	`[]`, `[ ]`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `[1}`, `[[[]]]`, `[[[]]`, `[]]`, `[`, `]`,
	`{"a":[1,{"b":"}"}]}`, `["]"]`, `[{}]`, `[{},{}]`, `{}{}`, `{} x`, `[1,2,3]  `,
	strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	strings.Repeat(`{"a":`, maxDepth) + "1" + strings.Repeat("}", maxDepth),
	strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
	strings.Repeat("[", maxDepth) + "{}" + strings.Repeat("]", maxDepth),
}

func TestValid(t *testing.T) {
	for _, c := range validCases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%.40q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

// FuzzValid checks Valid against encoding/json's Valid on any input.
func FuzzValid(f *testing.F) {
	for _, c := range validCases {
		if len(c) < 200 {
			f.Add([]byte(c))
		}
	}
	f.Add(benchLine(1))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := Valid(data), json.Valid(data); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", data, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	for _, bc := range []struct {
		name string
		line []byte
	}{
		{"chat", benchLine(1)},
		{"image", benchImageLine()},
	} {
		for _, impl := range []struct {
			name  string
			valid func([]byte) bool
		}{{"jsonl", Valid}, {"encoding-json", json.Valid}} {
			b.Run(bc.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(bc.line)))
				b.ReportAllocs()
				for b.Loop() {
					if !impl.valid(bc.line) {
						b.Fatal("not valid")
					}
				}
			})
		}
	}
}
