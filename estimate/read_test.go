package estimate_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/estimate"
	"github.com/sluice-llm/sluice/internal/jsonl"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/tokens"
)

var (
	chatLine    = testutil.ChatLine
	requestLine = testutil.RequestLine
	writeFile   = testutil.WriteFile
)

// readFile estimates the file at path.
func readFile(ctx context.Context, path string, cfg estimate.Config) (*estimate.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return estimate.Read(ctx, path, f, cfg)
}

// TestReadEdges checks the edges the command cannot easily show: an absurd max_tokens
// saturates instead of overflowing, and a canceled context stops the estimate.
func TestReadEdges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	input := writeFile(t, dir, "requests.jsonl", strings.Join([]string{
		chatLine("a", "gpt-4o-mini", "hello world", math.MaxInt64),
		chatLine("b", "gpt-4o-mini", "hello world", 10),
	}, "\n"))
	rep, err := readFile(t.Context(), input, estimate.Config{Prices: pricing.Default()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OutputTokensBound != math.MaxInt64 || rep.InputTokens != 18 || math.IsNaN(rep.CostUSD.Online) || rep.CostUSD.Online < 1e12 {
		t.Errorf("saturated bound: %d out, %d in, $%v", rep.OutputTokensBound, rep.InputTokens, rep.CostUSD.Online)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := readFile(ctx, input, estimate.Config{Prices: pricing.Default()}); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled estimate: err = %v, want context.Canceled", err)
	}
}

// TestReadManyBatches checks the parallel path against a plain sum: a file of many
// batches, with a line bigger than a batch, and invalid lines spread over it whose first
// five must be named in line order whichever worker met them.
func TestReadManyBatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var b strings.Builder
	var want sluice.Estimate // summed
	var wantInvalid []int64
	models := []string{"gpt-4o-mini", "gpt-4", "gpt-4.1"}
	for i := 1; i <= 5000; i++ {
		var line string
		switch {
		case i%997 == 0 || i == 7:
			line = `{"custom_id":"broken"`
			wantInvalid = append(wantInvalid, int64(i))
		case i == 2500:
			line = chatLine("huge", "gpt-4o-mini", strings.Repeat("lorem ipsum dolor sit amet ", 60000), 5) // 1.6 MB
		default:
			line = chatLine(fmt.Sprint(i), models[i%3], fmt.Sprintf("question %d: %s", i, strings.Repeat("why? ", i%40)), i%300)
		}
		b.WriteString(line + "\n")
		if req, lerr := jsonl.ParseRequest(int64(i), []byte(line)); lerr == nil {
			est, err := tokens.Default().Estimate(&req)
			if err != nil {
				t.Fatal(err)
			}
			want.PromptTokens += est.PromptTokens
			want.MaxOutputTokens += est.MaxOutputTokens
			if est.MaxOutputTokens == 0 {
				want.MaxOutputTokens += estimate.DefaultUnboundedOutput
			}
		}
	}
	input := writeFile(t, dir, "requests.jsonl", b.String())
	rep, err := readFile(t.Context(), input, estimate.Config{Prices: pricing.Default()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 5000-int64(len(wantInvalid)) || rep.InputTokens != want.PromptTokens || rep.OutputTokensBound != want.MaxOutputTokens {
		t.Errorf("got %d requests, %d in, %d out; want %d, %d, %d", rep.Requests, rep.InputTokens, rep.OutputTokensBound,
			5000-len(wantInvalid), want.PromptTokens, want.MaxOutputTokens)
	}
	var got []int64
	for _, l := range rep.FirstInvalid {
		got = append(got, l.Line)
	}
	if rep.InvalidLines != int64(len(wantInvalid)) || !slices.Equal(got, wantInvalid[:estimate.MaxInvalidShown]) {
		t.Errorf("invalid: %d, first %v; want %d, first %v", rep.InvalidLines, got, len(wantInvalid), wantInvalid[:estimate.MaxInvalidShown])
	}
	var perModel int64
	for _, m := range rep.ByModel {
		perModel += m.Requests
	}
	if perModel != rep.Requests || len(rep.ByModel) != 3 {
		t.Errorf("by_model: %d models summing %d requests", len(rep.ByModel), perModel)
	}
}

// TestReadError checks that a read error mid-file names the input and the line, once.
func TestReadError(t *testing.T) {
	t.Parallel()
	r := io.MultiReader(strings.NewReader(chatLine("a", "gpt-4o-mini", "hi", 5)+"\n"), iotest.ErrReader(errors.New("disk on fire")))
	_, err := estimate.Read(t.Context(), "input.jsonl", r, estimate.Config{Prices: pricing.Default()})
	if err == nil || err.Error() != "estimate input.jsonl: read line 2: disk on fire" {
		t.Errorf("err = %v, want it to name the input and line 2 once", err)
	}
}

// TestReadCompareUnpriced checks that a model to compare with that has no price is a
// *NoPriceError naming it, before any line is read.
func TestReadCompareUnpriced(t *testing.T) {
	t.Parallel()
	_, err := estimate.Read(t.Context(), "x", iotest.ErrReader(errors.New("must not be read")),
		estimate.Config{Prices: pricing.Default(), Compare: []string{"gpt-4o-mini", "gpt-4o-mni"}})
	var np *estimate.NoPriceError
	if !errors.As(err, &np) || np.Model != "gpt-4o-mni" {
		t.Errorf("err = %v, want a *NoPriceError for gpt-4o-mni", err)
	}
}

// benchLines is the size of BenchmarkEstimateFile's input: the 1,000,000 lines.
const benchLines = 1_000_000

// writeEstimateBench writes n request lines of a realistic mix: chats with a shared
// system prompt and a varied question (some in other scripts), chats without max_tokens,
// and embeddings.
func writeEstimateBench(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	const system = "You are a support assistant for an online bookshop. Answer in at most three sentences, politely, and never invent order details you were not given."
	topics := []string{"a late delivery", "a damaged cover", "a refund", "gift wrapping", "an e-book download", "a missing invoice", "配送の遅れ", "استرداد المبلغ"}
	for i := range n {
		q := fmt.Sprintf("Order %d: the customer writes about %s and asks what to do next (ticket %x).", 100000+i, topics[i%len(topics)], i*7919)
		var line string
		switch i % 10 {
		case 8:
			line = requestLine(fmt.Sprintf("r%07d", i), sluice.EndpointEmbeddings, map[string]any{"model": "text-embedding-3-small", "input": q})
		case 9:
			line = requestLine(fmt.Sprintf("r%07d", i), sluice.EndpointChatCompletions, map[string]any{"model": "gpt-4.1-mini",
				"messages": []map[string]string{{"role": "system", "content": system}, {"role": "user", "content": q}}})
		default:
			line = requestLine(fmt.Sprintf("r%07d", i), sluice.EndpointChatCompletions, map[string]any{"model": "gpt-4o-mini",
				"messages": []map[string]string{{"role": "system", "content": system}, {"role": "user", "content": q}}, "max_tokens": 200})
		}
		if _, err := w.WriteString(line + "\n"); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// BenchmarkEstimateFile estimates a 1,000,000-line file: one iteration is the whole file.
// The file is written once, before the timer starts.
//
//	go test -run '^$' -bench EstimateFile -benchtime 1x ./estimate/
func BenchmarkEstimateFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "requests.jsonl")
	if err := writeEstimateBench(path, benchLines); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		rep, err := readFile(b.Context(), path, estimate.Config{Prices: pricing.Default()})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Requests != benchLines {
			b.Fatalf("%d requests, want %d", rep.Requests, benchLines)
		}
	}
	b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
