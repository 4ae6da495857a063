package tokens_test

import (
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/tokens"
)

var (
	o200k  = tokens.ForModel("gpt-4o")
	cl100k = tokens.ForModel("gpt-4")
)

// TestCount checks counts published in OpenAI's cookbook ("How to count tokens with
// tiktoken") and others checked by encoding.
func TestCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text          string
		o200k, cl100k int
	}{
		{"", 0, 0},
		{"hello world", 2, 2},
		{"tiktoken is great!", 6, 6},
		{"antidisestablishmentarianism", 6, 6},
		{"2 + 2 = 4", 7, 7},
		{"お誕生日おめでとう", 8, 9},
		{"用一句话解释什么是大语言模型。", 10, 17},
		{"ask r00001", 4, 4},
	}
	for _, tt := range tests {
		if got := o200k.Count(tt.text); got != tt.o200k {
			t.Errorf("o200k_base Count(%q) = %d, want %d", tt.text, got, tt.o200k)
		}
		if got := cl100k.Count(tt.text); got != tt.cl100k {
			t.Errorf("cl100k_base Count(%q) = %d, want %d", tt.text, got, tt.cl100k)
		}
	}
}

func TestForModel(t *testing.T) {
	t.Parallel()
	tests := []struct{ model, want string }{
		{"gpt-4o", tokens.O200kBase},
		{"gpt-4o-mini", tokens.O200kBase},
		{"gpt-4o-mini-2024-07-18", tokens.O200kBase},
		{"openai/gpt-4o-mini-2024-07-18", tokens.O200kBase},
		{"chatgpt-4o-latest", tokens.O200kBase},
		{"gpt-4.1-nano", tokens.O200kBase},
		{"gpt-4.5-preview", tokens.O200kBase},
		{"gpt-5", tokens.O200kBase},
		{"gpt-5-mini-2025-08-07", tokens.O200kBase},
		{"o1", tokens.O200kBase},
		{"o3-mini", tokens.O200kBase},
		{"o4-mini-2025-04-16", tokens.O200kBase},
		{"ft:gpt-4o-mini-2024-07-18:acme::abc123", tokens.O200kBase},
		{"gpt-4", tokens.Cl100kBase},
		{"GPT-4", tokens.Cl100kBase},
		{"gpt-4-0613", tokens.Cl100kBase},
		{"gpt-4-turbo-2024-04-09", tokens.Cl100kBase},
		{"gpt-4-32k", tokens.Cl100kBase},
		{"openai/gpt-4-turbo", tokens.Cl100kBase},
		{"gpt-3.5-turbo", tokens.Cl100kBase},
		{"gpt-3.5-turbo-0125", tokens.Cl100kBase},
		{"gpt-35-turbo", tokens.Cl100kBase}, // Azure's spelling
		{"ft:gpt-3.5-turbo-0125:acme::abc123", tokens.Cl100kBase},
		{"text-embedding-3-small", tokens.Cl100kBase},
		{"text-embedding-3-large", tokens.Cl100kBase},
		{"text-embedding-ada-002", tokens.Cl100kBase},
		{"davinci-002", tokens.Cl100kBase},
		{"ft:babbage-002:acme::x", tokens.Cl100kBase},
		// Not OpenAI's, or unknown: o200k_base approximates.
		{"", tokens.O200kBase},
		{"my-azure-deployment", tokens.O200kBase},
		{"deepseek-chat", tokens.O200kBase},
		{"Qwen/Qwen2.5-72B-Instruct", tokens.O200kBase},
		{"meta-llama/Llama-3.3-70B-Instruct", tokens.O200kBase},
		{"claude-sonnet-4-5", tokens.O200kBase},
		{"gpt-4x", tokens.O200kBase},
		{"azure/gpt-4", tokens.Cl100kBase},
		{" gpt-4 ", tokens.Cl100kBase},
	}
	for _, tt := range tests {
		if got := tokens.ForModel(tt.model).Name(); got != tt.want {
			t.Errorf("ForModel(%q) = %s, want %s", tt.model, got, tt.want)
		}
	}
}

// TestExact holds the one model-name rule (internal/modelname) to the names the estimate
// reports on: a provider prefix, Azure's included, names the model behind it.
func TestExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		model string
		want  bool
	}{
		{"gpt-4o", true},
		{"openai/gpt-4o", true},
		{"azure/gpt-4o", true},
		{"Azure/GPT-4o-2024-08-06", true},
		{"gpt-35-turbo", true},
		{"ft:gpt-4o-mini-2024-07-18:acme::abc123", true},
		{"o1", true},
		{"o3-mini", true},
		{"o1x", false},
		{"text-embedding-3-small", true},
		{"my-azure-deployment", false},
		{"deepseek-chat", false},
		{"anthropic/claude-sonnet-4-5", false},
		{"", false},
		{"gpt-4o-mini-2024-07-18", true},
		{"openai/gpt-4.1", true},
		{"o4-mini-2025-04-16", true},
		{"GPT-5", true},
		{"claude-haiku-4-5", false},
		{"gemini-2.5-flash", false},
		{"Qwen/Qwen2.5-72B-Instruct", false},
	}
	for _, tt := range tests {
		if got := tokens.Exact(tt.model); got != tt.want {
			t.Errorf("Exact(%q) = %v, want %v", tt.model, got, tt.want)
		}
	}
}

func TestZeroCodecIsO200k(t *testing.T) {
	t.Parallel()
	var c tokens.Codec
	if c.Name() != tokens.O200kBase || c.Count("お誕生日おめでとう") != 8 {
		t.Fatalf("zero Codec: %s, %d tokens", c.Name(), c.Count("お誕生日おめでとう"))
	}
}

// TestCountLongStrings checks the cached path against the uncached one (Truncate
// encodes without the cache): first count, second count, and strings of equal length.
func TestCountLongStrings(t *testing.T) {
	t.Parallel()
	for _, c := range []tokens.Codec{o200k, cl100k} {
		for i := range 3 {
			text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 10+i) + strings.Repeat("x", 3-i)
			_, want := c.Truncate(text, 1<<30)
			for range 2 {
				if got := c.Count(text); got != want {
					t.Fatalf("%s: Count of a %d-byte string = %d, want %d", c.Name(), len(text), got, want)
				}
			}
		}
		a := strings.Repeat("a b ", 100)
		b := strings.Repeat("ab  ", 100)
		if c.Count(a) == c.Count(b) {
			t.Fatalf("%s: two strings of the same length share a count: %d", c.Name(), c.Count(a))
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text  string
		n     int
		want  string
		wantN int
	}{
		{"hello world", 0, "", 0},
		{"hello world", 1, "hello", 1},
		{"hello world", 2, "hello world", 2},
		{"hello world", 9, "hello world", 2},
		{"", 3, "", 0},
		{"ask b0000001 Consider the context", 4, "ask b000000", 4},
	}
	for _, tt := range tests {
		got, n := o200k.Truncate(tt.text, tt.n)
		if got != tt.want || n != tt.wantN {
			t.Errorf("Truncate(%q, %d) = %q, %d; want %q, %d", tt.text, tt.n, got, n, tt.want, tt.wantN)
		}
	}
}

// TestTruncateKeepsCharacters cuts text whose tokens split characters (cl100k_base spends
// several tokens on some kanji) at every length: the result is a valid prefix whose count
// is the one returned and at most n.
func TestTruncateKeepsCharacters(t *testing.T) {
	t.Parallel()
	const text = "お誕生日おめでとう, 用一句话解释什么是大语言模型。"
	for _, c := range []tokens.Codec{o200k, cl100k} {
		for n := 0; n <= c.Count(text)+1; n++ {
			got, k := c.Truncate(text, n)
			if !strings.HasPrefix(text, got) || !utf8.ValidString(got) || k > n || c.Count(got) != k {
				t.Fatalf("%s: Truncate(%d) = %q, %d (count %d)", c.Name(), n, got, k, c.Count(got))
			}
		}
	}
}

func TestCountConcurrent(t *testing.T) {
	t.Parallel()
	texts := []string{"hello world", "お誕生日おめでとう", strings.Repeat("concurrent counting ", 40)}
	want := make([]int, len(texts))
	for i, s := range texts {
		want[i] = cl100k.Count(s)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(texts)
				if got := cl100k.Count(texts[k]); got != want[k] {
					t.Errorf("Count(%.20q) = %d, want %d", texts[k], got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCount(b *testing.B) {
	text := "Summarise the plot of Hamlet in one sentence, please."
	n := o200k.Count(text)
	b.ReportAllocs()
	for b.Loop() {
		o200k.Count(text)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
