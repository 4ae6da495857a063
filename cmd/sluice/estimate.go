package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/tokens"
)

// defaultUnboundedOutput is the output, in tokens, that an estimate counts for a request
// that sets no output bound (no max_tokens, max_completion_tokens or max_output_tokens)
// when earlier jobs of its model give no mean: 256, the guess the engine's budgets
// reserve for such a request before its first answer.
const defaultUnboundedOutput = 256

// maxInvalidShown is how many invalid lines an estimate names; all are counted.
const maxInvalidShown = 5

// estimateReport is what "sluice estimate" prints. Its JSON form (--json) is a stable
// interface: fields are added, never renamed or removed.
//
// The worst case (CostUSD) has every request write its full output bound; the expected
// figures have requests write the mean output of earlier jobs of their model, from the
// ledger. Cached prompt tokens are not foreseen: the figures price every prompt token at
// the full input price.
type estimateReport struct {
	Input string `json:"input"`
	// Requests counts the valid request lines, InvalidLines the others (counted in no
	// other figure); FirstInvalid names the first few of them.
	Requests     int64         `json:"requests"`
	InvalidLines int64         `json:"invalid_lines"`
	FirstInvalid []invalidLine `json:"first_invalid"`

	InputTokens int64 `json:"input_tokens"`
	// OutputTokensBound sums the requests' output bounds (max_tokens, times n). Requests
	// that set none (UnboundedRequests) count the mean output of their model's history,
	// else DefaultOutputTokens.
	OutputTokensBound   int64 `json:"output_tokens_bound"`
	UnboundedRequests   int64 `json:"unbounded_requests"`
	DefaultOutputTokens int64 `json:"default_output_tokens"`
	// ExpectedOutputTokens is null when no model of the file has history; models without
	// history count their bound in it.
	ExpectedOutputTokens *int64 `json:"expected_output_tokens"`

	// CostUSD is the worst case of the priced models; CostUSD.Online is the figure a
	// spending threshold compares with. ExpectedCostUSD is null without history.
	CostUSD         usdPair  `json:"cost_usd"`
	ExpectedCostUSD *usdPair `json:"expected_cost_usd"`
	// CostComplete is false when some model has no known price: its tokens are counted,
	// its cost is not.
	CostComplete   bool     `json:"cost_complete"`
	UnpricedModels []string `json:"unpriced_models"`

	ByModel []*modelEstimate `json:"by_model"`
	// Compare is the same workload priced on other models (--compare), in the order given.
	Compare []*comparison `json:"compare,omitempty"`
}

// usdPair is a cost in US dollars sent online and through the provider's Batch API.
type usdPair struct {
	Online float64 `json:"online"`
	Batch  float64 `json:"batch"`
}

func (p *usdPair) add(q usdPair) { p.Online += q.Online; p.Batch += q.Batch }

// invalidLine is an input line that is not a valid request.
type invalidLine struct {
	Line  int64  `json:"line"`
	Error string `json:"error"`
}

// modelEstimate is the part of an estimate for the requests naming one model.
type modelEstimate struct {
	Model    string `json:"model"`
	Encoding string `json:"encoding"`
	// Approximate is true for a model that is not OpenAI's: its own tokenizer is not
	// available offline, and its prompts are counted with Encoding instead.
	Approximate       bool  `json:"approximate"`
	Requests          int64 `json:"requests"`
	InputTokens       int64 `json:"input_tokens"`
	OutputTokensBound int64 `json:"output_tokens_bound"`
	UnboundedRequests int64 `json:"unbounded_requests"`
	// HistoryRequests is how many done requests of earlier jobs the expectation is drawn
	// from, and HistoryMeanOutput their mean completion tokens (null without history).
	HistoryRequests      int64    `json:"history_requests"`
	HistoryMeanOutput    *float64 `json:"history_mean_output_tokens"`
	ExpectedOutputTokens *int64   `json:"expected_output_tokens"`
	// PricedAs is the price table's entry for the model ("" without a price, and then
	// CostUSD and ExpectedCostUSD are null).
	PricedAs        string   `json:"priced_as"`
	CostUSD         *usdPair `json:"cost_usd"`
	ExpectedCostUSD *usdPair `json:"expected_cost_usd"`

	mean     float64 // HistoryMeanOutput, when hasMean
	hasMean  bool
	expected float64 // expected output tokens, summed unrounded
}

// comparison is the file's workload priced on another model: its prompts counted with
// that model's tokenizer, its output as written.
type comparison struct {
	Model                string   `json:"model"`
	PricedAs             string   `json:"priced_as"`
	Encoding             string   `json:"encoding"`
	Approximate          bool     `json:"approximate"`
	InputTokens          int64    `json:"input_tokens"`
	OutputTokensBound    int64    `json:"output_tokens_bound"`
	ExpectedOutputTokens *int64   `json:"expected_output_tokens"`
	CostUSD              usdPair  `json:"cost_usd"`
	ExpectedCostUSD      *usdPair `json:"expected_cost_usd"`

	price pricing.Price
}

// estimateConfig is what an estimate needs besides its input.
type estimateConfig struct {
	// Prices prices the models; nil prices none.
	Prices *pricing.Table
	// History is the usage of earlier jobs by model (sqlite.Store.ModelHistory); nil or
	// empty means none.
	History map[string]sluice.ModelStats
	// Compare lists models to price the workload on; each must have a price in Prices.
	Compare []string
}

// estimateFile estimates the requests of the JSONL file at path: their prompt tokens
// counted with each model's tokenizer, their output bounds, and what they cost at prices.
// It reads the file as a stream, one line at a time. Invalid lines are counted and never
// stop it. An input that cannot be opened or read is a usage error.
func estimateFile(ctx context.Context, path string, prices *pricing.Table, history map[string]sluice.ModelStats) (*estimateReport, error) {
	return estimatePath(ctx, path, estimateConfig{Prices: prices, History: history})
}

// estimatePath is estimateFile with the whole configuration.
func estimatePath(ctx context.Context, path string, cfg estimateConfig) (*estimateReport, error) {
	f, err := openPlain(path) // plain, gzip or zstd
	if err != nil {
		return nil, usageError("estimate: %v", err)
	}
	defer f.Close()
	return estimateReader(ctx, path, f, cfg)
}

// Batches of lines the reader hands to the workers: at most batchLines lines, and cut
// once batchBytes are held (one huge line makes a batch of its own). A batch whose buffer
// grew beyond keepBatchBytes for a huge line is not reused.
const (
	batchLines     = 512
	batchBytes     = 1 << 20
	keepBatchBytes = 4 << 20
)

// estimateReader estimates the requests read from r, named name in the report. One
// goroutine reads lines and hands them out in batches to one worker per core, each
// parsing, counting and summing its share; their sums are merged at the end. The memory
// held is a few batches per worker, whatever the number of lines.
func estimateReader(ctx context.Context, name string, r io.Reader, cfg estimateConfig) (*estimateReport, error) {
	first, err := newEstimator(name, cfg)
	if err != nil {
		return nil, err
	}
	accs := []*estimator{first}
	for range runtime.GOMAXPROCS(0) - 1 {
		accs = append(accs, first.fork())
	}
	work := make(chan *lineBatch, len(accs))
	free := make(chan *lineBatch, 2*len(accs)+1)
	var wg sync.WaitGroup
	for _, acc := range accs {
		wg.Go(func() {
			for b := range work {
				acc.addBatch(b)
				select {
				case free <- b:
				default:
				}
			}
		})
	}
	readErr := readBatches(ctx, r, work, free)
	close(work)
	wg.Wait()
	switch {
	case readErr != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("estimate %s: %w", name, readErr)
	case readErr != nil:
		return nil, usageError("estimate %s: %v", name, readErr)
	}
	for _, acc := range accs[1:] {
		first.merge(acc)
	}
	return first.finish(), nil
}

// lineBatch is a run of input lines, copied out of the reader's buffer.
type lineBatch struct {
	buf   []byte
	lines []batchLine
}

// batchLine is one line of a batch: buf[start:end], or the reader's complaint about it.
type batchLine struct {
	line       int64
	start, end int
	err        *sluice.LineError
}

// readBatches reads r's lines into batches and sends them to work, taking empty batches
// from free when there are any. It returns nil at the end of the input, else the read
// error or the context's.
func readBatches(ctx context.Context, r io.Reader, work chan<- *lineBatch, free <-chan *lineBatch) error {
	jr := jsonl.NewReader(r, jsonl.DefaultMaxLine)
	b := newBatch(free)
	for {
		line, data, err := jr.Next()
		var le *sluice.LineError
		switch {
		case errors.Is(err, io.EOF):
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(b.lines) > 0 {
				work <- b
			}
			return nil
		case errors.As(err, &le):
			b.lines = append(b.lines, batchLine{line: le.Line, err: le})
		case err != nil:
			return err
		default:
			start := len(b.buf)
			b.buf = append(b.buf, data...)
			b.lines = append(b.lines, batchLine{line: line, start: start, end: len(b.buf)})
		}
		if len(b.lines) >= batchLines || len(b.buf) >= batchBytes {
			if err := ctx.Err(); err != nil {
				return err
			}
			work <- b
			b = newBatch(free)
		}
	}
}

// newBatch returns an empty batch, reusing one from free when it can.
func newBatch(free <-chan *lineBatch) *lineBatch {
	select {
	case b := <-free:
		if cap(b.buf) > keepBatchBytes {
			b.buf = nil
		}
		b.buf, b.lines = b.buf[:0], b.lines[:0]
		return b
	default:
		return &lineBatch{buf: make([]byte, 0, batchBytes+batchBytes/4), lines: make([]batchLine, 0, batchLines)}
	}
}

// addBatch parses, counts and adds every line of b.
func (e *estimator) addBatch(b *lineBatch) {
	for _, l := range b.lines {
		if l.err != nil {
			e.invalid(l.err)
			continue
		}
		req, lerr := jsonl.ParseRequest(l.line, b.buf[l.start:l.end])
		if lerr != nil {
			e.invalid(lerr)
			continue
		}
		est, err := tokens.Default().Estimate(&req)
		if err == nil {
			err = e.add(&req, est)
		}
		if err != nil {
			e.invalid(&sluice.LineError{Line: l.line, Field: "body", Msg: err.Error()})
		}
	}
}

// estimator accumulates an estimate, one request at a time. Its memory grows with the
// number of models, never with the number of lines. It is not safe for concurrent use:
// each worker has its own (see fork), and merge sums them.
type estimator struct {
	rep     *estimateReport
	cfg     estimateConfig
	models  map[string]*modelEstimate
	targets []*comparison
	// encodings are the encodings the comparisons count in, each with the JSON string of
	// a model that has it (to count a prompt as that model's).
	encodings map[string][]byte
	// counts is scratch space: the current request's prompt tokens by encoding.
	counts map[string]int64
}

func newEstimator(name string, cfg estimateConfig) (*estimator, error) {
	e := &estimator{
		rep: &estimateReport{
			Input: name, FirstInvalid: []invalidLine{}, DefaultOutputTokens: defaultUnboundedOutput,
			CostComplete: true, UnpricedModels: []string{}, ByModel: []*modelEstimate{},
		},
		cfg:       cfg,
		models:    map[string]*modelEstimate{},
		encodings: map[string][]byte{},
		counts:    map[string]int64{},
	}
	for _, m := range cfg.Compare {
		p, ok := cfg.Prices.Lookup(m)
		if !ok {
			return nil, usageError("--compare: no price for model %q (--prices FILE adds prices)", m)
		}
		enc := tokens.ForModel(m).Name()
		e.targets = append(e.targets, &comparison{Model: m, PricedAs: p.Model, Encoding: enc, Approximate: !tokens.Exact(m), price: p})
		if _, ok := e.encodings[enc]; !ok {
			quoted, err := json.Marshal(m)
			if err != nil {
				return nil, usageError("--compare: model %q: %v", m, err)
			}
			e.encodings[enc] = quoted
		}
	}
	return e, nil
}

// fork returns an empty estimator with e's configuration, for another worker.
func (e *estimator) fork() *estimator {
	f := &estimator{
		rep:       &estimateReport{FirstInvalid: []invalidLine{}},
		cfg:       e.cfg,
		models:    map[string]*modelEstimate{},
		encodings: e.encodings, // read only
		counts:    map[string]int64{},
	}
	for _, c := range e.targets {
		f.targets = append(f.targets, &comparison{Model: c.Model, Encoding: c.Encoding})
	}
	return f
}

// merge adds the sums of o, a fork of e, to e.
func (e *estimator) merge(o *estimator) {
	e.rep.Requests += o.rep.Requests
	e.rep.InvalidLines += o.rep.InvalidLines
	e.rep.FirstInvalid = append(e.rep.FirstInvalid, o.rep.FirstInvalid...)
	slices.SortFunc(e.rep.FirstInvalid, func(a, b invalidLine) int { return cmp.Compare(a.Line, b.Line) })
	e.rep.FirstInvalid = e.rep.FirstInvalid[:min(len(e.rep.FirstInvalid), maxInvalidShown)]
	for name, om := range o.models {
		m := e.model(name)
		m.Requests += om.Requests
		m.InputTokens = addSat(m.InputTokens, om.InputTokens)
		m.OutputTokensBound = addSat(m.OutputTokensBound, om.OutputTokensBound)
		m.UnboundedRequests += om.UnboundedRequests
		m.expected += om.expected
	}
	for i, c := range o.targets {
		e.targets[i].InputTokens = addSat(e.targets[i].InputTokens, c.InputTokens)
	}
}

// invalid records an invalid line.
func (e *estimator) invalid(err *sluice.LineError) {
	e.rep.InvalidLines++
	if len(e.rep.FirstInvalid) < maxInvalidShown {
		msg := err.Msg
		if err.Field != "" {
			msg = err.Field + ": " + msg
		}
		e.rep.FirstInvalid = append(e.rep.FirstInvalid, invalidLine{Line: err.Line, Error: msg})
	}
}

// model returns the estimate of one model, starting it on its first request.
func (e *estimator) model(name string) *modelEstimate {
	m := e.models[name]
	if m != nil {
		return m
	}
	m = &modelEstimate{Model: name, Encoding: tokens.ForModel(name).Name(), Approximate: !tokens.Exact(name)}
	if h, ok := e.cfg.History[name]; ok && h.Requests > 0 {
		m.HistoryRequests = h.Requests
		m.mean = float64(h.Usage.CompletionTokens) / float64(h.Requests)
		m.hasMean = true
		m.HistoryMeanOutput = &m.mean
	}
	e.models[name] = m
	return m
}

// add counts one valid request. It fails only when a comparison cannot count the
// request's prompt with another tokenizer, which would be a body the estimator read
// once already.
func (e *estimator) add(req *sluice.Request, est sluice.Estimate) error {
	if len(e.targets) > 0 {
		if err := e.countFor(req, est); err != nil {
			return err
		}
		for _, c := range e.targets {
			c.InputTokens = addSat(c.InputTokens, e.counts[c.Encoding])
		}
	}
	e.rep.Requests++
	m := e.model(est.Model)
	m.Requests++
	m.InputTokens = addSat(m.InputTokens, est.PromptTokens)

	bound := est.MaxOutputTokens
	expected := float64(bound)
	switch {
	case req.URL == sluice.EndpointEmbeddings: // no output
	case bound == 0:
		m.UnboundedRequests++
		bound, expected = defaultUnboundedOutput, defaultUnboundedOutput
		if m.hasMean {
			bound, expected = int64(math.Ceil(m.mean)), m.mean
		}
	case m.hasMean:
		expected = min(m.mean, expected)
	}
	m.OutputTokensBound = addSat(m.OutputTokensBound, bound)
	m.expected += expected
	return nil
}

// countFor fills e.counts with req's prompt tokens in every encoding a comparison needs:
// the estimate's own count for its encoding, a recount for the other.
func (e *estimator) countFor(req *sluice.Request, est sluice.Estimate) error {
	own := tokens.ForModel(est.Model).Name()
	for enc, model := range e.encodings {
		if enc == own {
			e.counts[enc] = est.PromptTokens
			continue
		}
		other := *req
		other.Body = withModel(req.Body, model)
		oe, err := tokens.Default().Estimate(&other)
		if err != nil {
			return fmt.Errorf("count as %s: %w", model, err)
		}
		e.counts[enc] = oe.PromptTokens
	}
	return nil
}

// withModel returns a copy of the JSON object body whose model member is model, a JSON
// string. The member is appended, not replaced: a JSON decoder, like the estimator's,
// takes the last of two members with one name. body must be a non-empty JSON object, as
// every valid request's body is.
func withModel(body, model []byte) []byte {
	end := bytes.LastIndexByte(body, '}')
	out := make([]byte, 0, len(body)+len(model)+16)
	out = append(out, body[:end]...)
	out = append(out, `,"model":`...)
	out = append(out, model...)
	return append(out, '}')
}

// finish totals the models, prices them, and returns the report.
func (e *estimator) finish() *estimateReport {
	rep := e.rep
	names := make([]string, 0, len(e.models))
	for name := range e.models {
		names = append(names, name)
	}
	slices.Sort(names)
	var expected float64
	anyHistory := false
	for _, name := range names {
		m := e.models[name]
		rep.ByModel = append(rep.ByModel, m)
		rep.InputTokens = addSat(rep.InputTokens, m.InputTokens)
		rep.OutputTokensBound = addSat(rep.OutputTokensBound, m.OutputTokensBound)
		rep.UnboundedRequests += m.UnboundedRequests
		expected += m.expected
		if m.hasMean {
			anyHistory = true
			m.ExpectedOutputTokens = ptrTo(roundTokens(m.expected))
		}
		p, ok := e.cfg.Prices.Lookup(name)
		if !ok {
			rep.CostComplete = false
			rep.UnpricedModels = append(rep.UnpricedModels, name)
			continue
		}
		m.PricedAs = p.Model
		m.CostUSD = ptrTo(costOf(p, m.InputTokens, m.OutputTokensBound))
		rep.CostUSD.add(*m.CostUSD)
		if m.hasMean {
			m.ExpectedCostUSD = ptrTo(costOf(p, m.InputTokens, roundTokens(m.expected)))
		}
	}
	if anyHistory {
		rep.ExpectedOutputTokens = ptrTo(roundTokens(expected))
		rep.ExpectedCostUSD = &usdPair{}
		for _, m := range rep.ByModel {
			switch {
			case m.ExpectedCostUSD != nil:
				rep.ExpectedCostUSD.add(*m.ExpectedCostUSD)
			case m.CostUSD != nil:
				rep.ExpectedCostUSD.add(*m.CostUSD) // no history: its worst case
			}
		}
	}
	for _, c := range e.targets {
		c.OutputTokensBound = rep.OutputTokensBound
		c.CostUSD = costOf(c.price, c.InputTokens, c.OutputTokensBound)
		if rep.ExpectedOutputTokens != nil {
			c.ExpectedOutputTokens = rep.ExpectedOutputTokens
			c.ExpectedCostUSD = ptrTo(costOf(c.price, c.InputTokens, *rep.ExpectedOutputTokens))
		}
		rep.Compare = append(rep.Compare, c)
	}
	return rep
}

// costOf is what input and output tokens cost at p, online and in a batch.
func costOf(p pricing.Price, input, output int64) usdPair {
	u := sluice.Usage{PromptTokens: input, CompletionTokens: output}
	return usdPair{Online: p.Cost(u, false), Batch: p.Cost(u, true)}
}

// roundTokens rounds an expected token count, saturating at the largest int64.
func roundTokens(v float64) int64 {
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Round(v))
}

// addSat is a + b for non-negative a and b, saturating at the largest int64: an output
// bound may already be saturated by a request asking for an absurd max_tokens.
func addSat(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

func ptrTo[T any](v T) *T { return &v }

// estimateFlags are the flags of "sluice estimate".
type estimateFlags struct {
	prices, store string
	compare       []string
	json          bool
}

func newEstimateCmd(e *env) *cobra.Command {
	f := &estimateFlags{}
	cmd := &cobra.Command{
		Use:   "estimate INPUT",
		Short: "Count a file's tokens and price it before running it",
		Long: `Estimate reads INPUT (the OpenAI Batch API input format) as a stream and counts every
request's prompt tokens with its model's tokenizer, bounds its output by max_tokens, and
prices both, per model, online and through the provider's Batch API (worst case: every
request writes its max_tokens). A request that sets no max_tokens counts the mean output
of earlier jobs of its model, else ` + strconv.Itoa(defaultUnboundedOutput) + ` tokens.

When earlier jobs in the store used the same models, estimate also gives the expected
output and cost, from their mean completion tokens per request. Without a store file
there is no history (and none is created).

--compare prices the same workload on other models, with their tokenizers.
Invalid lines are counted and named, and never stop the estimate.`,
		Example: `  sluice estimate requests.jsonl
  sluice estimate requests.jsonl --compare gpt-4.1-mini,gpt-5-mini,deepseek-chat
  sluice estimate requests.jsonl --json | jq .cost_usd.online`,
		Args: exactArgs(1, "one input file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEstimate(cmd.Context(), e, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.prices, "prices", "", "a prices file overriding or extending the built-in table")
	fl.StringSliceVar(&f.compare, "compare", nil, "price the same workload on these models (comma-separated)")
	fl.StringVar(&f.store, "store", "", "the ledger whose earlier jobs give the expected output (default $SLUICE_STORE, else the user's data directory)")
	fl.BoolVar(&f.json, "json", false, "print JSON")
	return cmd
}

func runEstimate(ctx context.Context, e *env, f *estimateFlags, input string) error {
	prices, err := loadPrices(f.prices)
	if err != nil {
		return err
	}
	var compare []string
	for _, m := range f.compare {
		if m = strings.TrimSpace(m); m != "" && !slices.Contains(compare, m) {
			compare = append(compare, m)
		}
	}
	if fi, err := os.Stat(input); err != nil {
		return usageError("estimate: %v", err)
	} else if fi.IsDir() {
		return usageError("estimate: %s is a directory", input)
	}
	history, err := loadHistory(ctx, e, f.store)
	if err != nil {
		return err
	}
	rep, err := estimatePath(ctx, input, estimateConfig{Prices: prices, History: history, Compare: compare})
	if err != nil {
		return err
	}
	if f.json {
		return writeJSON(e.stdout, rep)
	}
	rep.print(e.stdout)
	return nil
}

// loadHistory reads the usage of earlier jobs by model from the ledger. A ledger that does
// not exist has no history, and is not created.
func loadHistory(ctx context.Context, e *env, flag string) (map[string]sluice.ModelStats, error) {
	path, err := storePath(e, flag)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer st.Close()
	return st.ModelHistory(ctx)
}

// print writes the estimate for a person to read.
func (r *estimateReport) print(w io.Writer) {
	fmt.Fprintf(w, "%s: %s, %s", r.Input, plural(r.Requests, "request", "requests"), plural(int64(len(r.ByModel)), "model", "models"))
	if r.InvalidLines > 0 {
		fmt.Fprintf(w, "; %s, not counted", plural(r.InvalidLines, "invalid line", "invalid lines"))
	}
	fmt.Fprintln(w)
	for _, l := range r.FirstInvalid {
		fmt.Fprintf(w, "  line %d: %s\n", l.Line, l.Error)
	}
	if more := r.InvalidLines - int64(len(r.FirstInvalid)); more > 0 {
		fmt.Fprintf(w, "  ... and %s more\n", groupDigits(more))
	}
	for _, m := range r.ByModel {
		if m.UnboundedRequests == 0 {
			continue
		}
		how := fmt.Sprintf("%d output tokens each (the default: no history)", defaultUnboundedOutput)
		if m.HistoryMeanOutput != nil {
			how = fmt.Sprintf("%.0f output tokens each (the mean of %s earlier requests)", math.Ceil(*m.HistoryMeanOutput), groupDigits(m.HistoryRequests))
		}
		fmt.Fprintf(w, "  %s: %s no max_tokens; counted at %s\n", m.Model, plural(m.UnboundedRequests, "request sets", "requests set"), how)
	}
	if len(r.ByModel) == 0 {
		return
	}
	fmt.Fprintln(w)
	r.printModels(w)
	var approx []string
	for _, m := range r.ByModel {
		if m.Approximate {
			approx = append(approx, m.Model)
		}
	}
	if len(approx) > 0 {
		fmt.Fprintf(w, "\n%s: not OpenAI's, counted with o200k_base (an approximation: sluice has OpenAI's tokenizers only)\n", strings.Join(approx, ", "))
	}
	if len(r.UnpricedModels) > 0 {
		fmt.Fprintf(w, "\nno price for %s: counted in tokens only (--prices FILE adds prices)\n", strings.Join(r.UnpricedModels, ", "))
	}
	fmt.Fprintln(w, "\n≤ worst case: every request writes its max_tokens")
	if r.ExpectedOutputTokens != nil {
		fmt.Fprintln(w, "~ expected: requests write the mean output of earlier jobs of their model (the worst case for models with none)")
	}
	if len(r.Compare) > 0 {
		fmt.Fprintln(w, "\nthe same workload on other models:")
		r.printCompare(w)
	}
}

// printModels writes the table of models, with a total row when there are several.
func (r *estimateReport) printModels(w io.Writer) {
	history := r.ExpectedOutputTokens != nil
	total := "total"
	if !r.CostComplete {
		total = "total (priced)"
	}
	names := []string{"MODEL", total}
	for _, m := range r.ByModel {
		names = append(names, m.Model)
	}
	name := leftAligned(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tREQUESTS\tINPUT TOKENS\tOUTPUT ≤\tONLINE ≤\tBATCH ≤\t", name("MODEL"))
	if history {
		fmt.Fprint(tw, "EXPECTED OUTPUT\tONLINE ~\tBATCH ~\t")
	}
	fmt.Fprintln(tw)
	row := func(model string, requests, input, bound int64, cost *usdPair, expected *int64, expectedCost *usdPair, none string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t", name(model), groupDigits(requests), groupDigits(input),
			groupDigits(bound), costCells(cost, none))
		if history {
			fmt.Fprintf(tw, "%s\t%s\t", optTokens(expected, "no history"), costCells(expectedCost, "-"))
		}
		fmt.Fprintln(tw)
	}
	for _, m := range r.ByModel {
		row(m.Model, m.Requests, m.InputTokens, m.OutputTokensBound, m.CostUSD, m.ExpectedOutputTokens, m.ExpectedCostUSD, "no price")
	}
	if len(r.ByModel) > 1 {
		row(total, r.Requests, r.InputTokens, r.OutputTokensBound, &r.CostUSD, r.ExpectedOutputTokens, r.ExpectedCostUSD, "")
	}
	tw.Flush()
}

// printCompare writes the comparison table, with the file as written first.
func (r *estimateReport) printCompare(w io.Writer) {
	history := r.ExpectedOutputTokens != nil
	as := "as written"
	if !r.CostComplete {
		as = "as written (priced)"
	}
	names := []string{"MODEL", as}
	for _, c := range r.Compare {
		names = append(names, c.Model)
	}
	name := leftAligned(names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tENCODING\tINPUT TOKENS\tOUTPUT ≤\tONLINE ≤\tBATCH ≤\t", name("MODEL"))
	if history {
		fmt.Fprint(tw, "ONLINE ~\tBATCH ~\t")
	}
	fmt.Fprintln(tw, "VS FILE\t")
	base := r.CostUSD.Online
	row := func(model, enc string, input, bound int64, cost, expected *usdPair) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t", name(model), enc, groupDigits(input), groupDigits(bound), costCells(cost, ""))
		if history {
			fmt.Fprintf(tw, "%s\t", costCells(expected, "-"))
		}
		vs := "-"
		if base > 0 && r.CostComplete {
			vs = fmt.Sprintf("%.2f×", cost.Online/base)
		}
		fmt.Fprintf(tw, "%s\t\n", vs)
	}
	enc, approx := "-", false
	if len(r.ByModel) == 1 {
		enc = r.ByModel[0].Encoding
		if r.ByModel[0].Approximate {
			enc, approx = enc+"*", true
		}
	}
	row(as, enc, r.InputTokens, r.OutputTokensBound, &r.CostUSD, r.ExpectedCostUSD)
	for _, c := range r.Compare {
		enc := c.Encoding
		if c.Approximate {
			enc += "*"
			approx = true
		}
		row(c.Model, enc, c.InputTokens, c.OutputTokensBound, &c.CostUSD, c.ExpectedCostUSD)
	}
	tw.Flush()
	if approx {
		fmt.Fprintln(w, "  * not the model's own tokenizer: its counts are an approximation")
	}
}

// leftAligned returns a function padding a name to the widest of names, so that a column
// of names reads left-aligned in a table whose other columns are aligned right.
func leftAligned(names []string) func(string) string {
	width := 0
	for _, n := range names {
		width = max(width, utf8.RuneCountInString(n))
	}
	return func(n string) string { return n + strings.Repeat(" ", width-utf8.RuneCountInString(n)) }
}

// costCells is two table cells, online and batch, or none (when p is nil) as two cells.
func costCells(p *usdPair, none string) string {
	if p == nil {
		return none + "\t" + none
	}
	return fmtUSD(p.Online) + "\t" + fmtUSD(p.Batch)
}

func optTokens(n *int64, none string) string {
	if n == nil {
		return none
	}
	return groupDigits(*n)
}

// fmtUSD formats a cost: cents and thousands separators from $1, four decimals below
// (and "<$0.0001" for what would round to nothing).
func fmtUSD(v float64) string {
	if v > 0 && v < 0.00005 {
		return "<$0.0001"
	}
	if v < 1 {
		return fmt.Sprintf("$%.4f", v)
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	whole, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil { // beyond int64: a saturated bound
		return "$" + s
	}
	return "$" + groupDigits(n) + "." + frac
}

// plural is n with the singular or plural noun.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return groupDigits(n) + " " + many
}

// groupDigits formats n with thousands separators.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
