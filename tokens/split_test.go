package tokens

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The fast count must equal the tokenizer's count, and its pre-tokens must encode to the
// same tokens as the whole text: these tests compare them on every short string over an
// alphabet that exercises each alternative of both expressions, on random long strings,
// and by fuzzing.

var encodings = []*encoding{o200k, cl100k}

// checkSplit compares the fast path with the tokenizer on text.
func checkSplit(t *testing.T, e *encoding, text string) {
	t.Helper()
	want, _, _ := e.codec().Encode(text)
	if n := e.count(text); n != len(want) {
		t.Fatalf("%s: %q: count %d, want %d", e.name, text, n, len(want))
	}
	if !isPlainASCII(text) {
		return // counted by the tokenizer
	}
	var got []uint
	var pre []string
	for i := 0; i < len(text); {
		j := nextPreToken(text, i, e.o200k)
		if j <= i || j > len(text) {
			t.Fatalf("%s: %q: pre-token at %d ends at %d", e.name, text, i, j)
		}
		ids, _, _ := e.codec().Encode(text[i:j])
		got = append(got, ids...)
		pre = append(pre, text[i:j])
		i = j
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: %q: pre-tokens %q encode to %v, the text to %v", e.name, text, pre, got, want)
	}
}

func TestSplitExhaustive(t *testing.T) {
	t.Parallel()
	alphabet := []byte("aB0 \n\r\t'sLe/!\x00\v\x7f")
	if testing.Short() {
		alphabet = alphabet[:10]
	}
	var text []byte
	var gen func(depth int)
	gen = func(depth int) {
		for _, e := range encodings {
			checkSplit(t, e, string(text))
		}
		if depth == 0 {
			return
		}
		for _, c := range alphabet {
			text = append(text, c)
			gen(depth - 1)
			text = text[:len(text)-1]
		}
	}
	gen(4)
}

func TestSplitRandom(t *testing.T) {
	t.Parallel()
	parts := []string{
		"the", " model", "Hello", "HELLO", "HTTPServer", "don't", "WE'LL", "it's", "'re", "'x",
		"12345", "3.14", " ", "  ", "   ", "\n", "\r\n", "\n\n", " \n ", "\t", "\v\f", "!", "?!",
		" (", "...", "//", "/", "://", "\"", "{\"a\":1}", "_", "-", "#", "x", "I", "a", "~", "`",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		for _, e := range encodings {
			checkSplit(t, e, b.String())
		}
	}
}

func FuzzCount(f *testing.F) {
	for _, s := range []string{"hello world", "Don't STOP'll", " \n\t x", "a/b://c\n/", "123456 7", "日本", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, e := range encodings {
			if got, want := e.count(text), e.countSlow(text); got != want {
				t.Fatalf("%s: count(%q) = %d, the tokenizer says %d", e.name, text, got, want)
			}
		}
	})
}

// TestTruncateASCII checks the fast Truncate against the tokenizer's tokens: the prefix
// of n tokens is the concatenation of the text's first n tokens.
func TestTruncateASCII(t *testing.T) {
	t.Parallel()
	texts := []string{"hello world", "ask b0000001 Consider the context carefully, citing the key facts.",
		"HTTPServer's   answer:\n\n  {\"a\": [1, 22, 333, 4444]} // done.", "x"}
	for _, e := range encodings {
		c := Codec{e}
		for _, text := range texts {
			_, pieces, _ := e.codec().Encode(text)
			for n := 0; n <= len(pieces)+1; n++ {
				want := strings.Join(pieces[:min(n, len(pieces))], "")
				got, k := c.Truncate(text, n)
				if got != want || k != min(n, len(pieces)) {
					t.Fatalf("%s: Truncate(%q, %d) = %q, %d; want %q, %d", e.name, text, n, got, k, want, min(n, len(pieces)))
				}
			}
		}
	}
}
