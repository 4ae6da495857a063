package tokens

import (
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
)

// noSpaces returns n bytes of text that the encodings' expressions do not split: random
// lower-case letters, or (ascii false) CJK characters and letters mixed.
func noSpaces(n int, ascii bool) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	r := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	sb.Grow(n + 4)
	for sb.Len() < n {
		if !ascii && r.IntN(4) == 0 {
			sb.WriteRune(rune(0x4e00 + r.IntN(0x5000)))
			continue
		}
		sb.WriteByte(letters[r.IntN(len(letters))])
	}
	return sb.String()
}

// peakHeap runs f and returns the most heap its objects took while it ran, above what
// they took before, sampled every few hundred microseconds.
func peakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			peak = max(peak, read())
			select {
			case <-done:
				return
			default:
				runtime.Gosched()
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	return max(peak, read()) - min(base, peak)
}

// TestCountLongTextBoundedMemory counts 4 MiB of text without spaces: the heap must
// stay within a small multiple of the text (the tokenizer alone took about 40 bytes per
// byte of it).
func TestCountLongTextBoundedMemory(t *testing.T) {
	const size = 4 << 20
	for _, ascii := range []bool{true, false} {
		text := noSpaces(size, ascii)
		Codec{}.Count("warm up")
		var n int
		peak := peakHeap(func() { n = Codec{}.Count(text) })
		if n < size/8 {
			t.Fatalf("ascii %v: %d tokens in %d bytes", ascii, n, size)
		}
		if limit := uint64(2*size + 32<<20); peak > limit {
			t.Errorf("ascii %v: counting %d bytes took %d MB of heap, want at most %d MB", ascii, size, peak>>20, limit>>20)
		}
	}
}

// TestCountLongTextAccuracy compares the count in pieces with the tokenizer's exact count
// of the whole text.
func TestCountLongTextAccuracy(t *testing.T) {
	const size = 1 << 20
	for _, e := range encodings {
		for _, text := range []string{
			noSpaces(size, true), noSpaces(size, false), strings.Repeat("a", size),
			strings.Repeat("Lorem ipsum dolor sit amet, 日本語のテキスト. ", size/48),
		} {
			got, want := e.count(text), e.countSlow(text)
			if diff := float64(got-want) / float64(want); diff > 0.005 || diff < -0.005 {
				t.Errorf("%s: count of %d bytes (%q...) = %d, exact %d (%.3f%% off)", e.name, len(text), text[:12], got, want, 100*diff)
			}
		}
	}
}

// TestCutText checks the cuts: at a pre-token boundary when there is one, never inside a
// character.
func TestCutText(t *testing.T) {
	tests := []struct {
		name, text  string
		limit, want int
	}{
		{"space", "日本語 日本語 日本語", 21, 19},
		{"no space", "日本語日本語日本語", 16, 15},
		{"double space", "日本語  日本", 12, 11},
		{"not UTF-8", "\xff\xff\xff\xff\xff\xff", 4, 4},
	}
	for _, tt := range tests {
		if got := cutText(tt.text, tt.limit); got != tt.want {
			t.Errorf("%s: cutText(%q, %d) = %d, want %d", tt.name, tt.text, tt.limit, got, tt.want)
		}
	}
}

// BenchmarkCountNoSpaces reports the bytes allocated per input byte when counting text
// without spaces (all of it garbage: the heap in use stays bounded).
func BenchmarkCountNoSpaces(b *testing.B) {
	for _, ascii := range []bool{true, false} {
		name := "ascii"
		if !ascii {
			name = "cjk"
		}
		text := noSpaces(4<<20, ascii)
		b.Run(name, func(b *testing.B) {
			Codec{}.Count("warm up")
			b.SetBytes(int64(len(text)))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				o200k.count(text)
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(text)), "alloc-B/input-B")
		})
	}
}

// TestTruncateLongText: truncating long text without spaces encodes only the piece the
// cut falls in, and gives the same prefix as the tokenizer on short text.
func TestTruncateLongText(t *testing.T) {
	for _, ascii := range []bool{true, false} {
		text := noSpaces(4<<20, ascii)
		var c Codec
		c.Count("warm up")
		var prefix string
		var n int
		peak := peakHeap(func() { prefix, n = c.Truncate(text, 100) })
		// A character of several tokens is left out whole: the prefix may count fewer.
		if n > 100 || n < 97 || !strings.HasPrefix(text, prefix) || c.Count(prefix) != n {
			t.Errorf("ascii %v: Truncate(…, 100) = %d bytes, %d tokens (%d counted)", ascii, len(prefix), n, c.Count(prefix))
		}
		if peak > 32<<20 {
			t.Errorf("ascii %v: truncating 4 MB took %d MB of heap", ascii, peak>>20)
		}
	}
}
