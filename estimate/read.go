package estimate

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
	"github.com/sluice-llm/sluice/pricing"
	"github.com/sluice-llm/sluice/tokens"
)

// Batches of lines the reader hands to the workers: at most batchLines lines, and cut
// once batchBytes are held (one huge line makes a batch of its own). A batch whose buffer
// grew beyond keepBatchBytes for a huge line is not reused.
const (
	batchLines     = 512
	batchBytes     = 1 << 20
	keepBatchBytes = 4 << 20
)

// Read estimates the requests of the JSONL read from r (the OpenAI Batch API input
// format), named name in the report: their prompt tokens counted with each model's
// tokenizer, their output bounds, and what they cost at cfg.Prices. Invalid lines are
// counted and never stop it.
//
// One goroutine reads lines and hands them out in batches to one worker per core, each
// parsing, counting and summing its share; their sums are merged at the end. The memory
// held is a few batches per worker, whatever the number of lines.
//
// A model of cfg.Compare without a price is a *NoPriceError. An input that cannot be read
// (a line beyond jsonl.DefaultMaxLine, a read error) is an error naming the input and the
// line; a cancelled ctx stops the estimate with an error wrapping ctx.Err().
func Read(ctx context.Context, name string, r io.Reader, cfg Config) (*Report, error) {
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
	if readErr != nil {
		return nil, fmt.Errorf("estimate %s: %w", name, readErr)
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
	rep     *Report
	cfg     Config
	models  map[string]*Model
	targets []*Comparison
	// encodings are the encodings the comparisons count in, each with the JSON string of
	// a model that has it (to count a prompt as that model's).
	encodings map[string][]byte
	// counts is scratch space: the current request's prompt tokens by encoding.
	counts map[string]int64
}

func newEstimator(name string, cfg Config) (*estimator, error) {
	e := &estimator{
		rep: &Report{
			Input: name, FirstInvalid: []InvalidLine{}, DefaultOutputTokens: DefaultUnboundedOutput,
			CostComplete: true, UnpricedModels: []string{}, ByModel: []*Model{},
		},
		cfg:       cfg,
		models:    map[string]*Model{},
		encodings: map[string][]byte{},
		counts:    map[string]int64{},
	}
	for _, m := range cfg.Compare {
		p, ok := cfg.Prices.Lookup(m)
		if !ok {
			return nil, &NoPriceError{Model: m}
		}
		enc := tokens.ForModel(m).Name()
		e.targets = append(e.targets, &Comparison{Model: m, PricedAs: p.Model, Encoding: enc, Approximate: !tokens.Exact(m), price: p})
		if _, ok := e.encodings[enc]; !ok {
			quoted, _ := json.Marshal(m) // a string always marshals
			e.encodings[enc] = quoted
		}
	}
	return e, nil
}

// fork returns an empty estimator with e's configuration, for another worker.
func (e *estimator) fork() *estimator {
	f := &estimator{
		rep:       &Report{FirstInvalid: []InvalidLine{}},
		cfg:       e.cfg,
		models:    map[string]*Model{},
		encodings: e.encodings, // read only
		counts:    map[string]int64{},
	}
	for _, c := range e.targets {
		f.targets = append(f.targets, &Comparison{Model: c.Model, Encoding: c.Encoding})
	}
	return f
}

// merge adds the sums of o, a fork of e, to e.
func (e *estimator) merge(o *estimator) {
	e.rep.Requests += o.rep.Requests
	e.rep.InvalidLines += o.rep.InvalidLines
	e.rep.FirstInvalid = append(e.rep.FirstInvalid, o.rep.FirstInvalid...)
	slices.SortFunc(e.rep.FirstInvalid, func(a, b InvalidLine) int { return cmp.Compare(a.Line, b.Line) })
	e.rep.FirstInvalid = e.rep.FirstInvalid[:min(len(e.rep.FirstInvalid), MaxInvalidShown)]
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
	if len(e.rep.FirstInvalid) < MaxInvalidShown {
		msg := err.Msg
		if err.Field != "" {
			msg = err.Field + ": " + msg
		}
		e.rep.FirstInvalid = append(e.rep.FirstInvalid, InvalidLine{Line: err.Line, Error: msg})
	}
}

// model returns the estimate of one model, starting it on its first request.
func (e *estimator) model(name string) *Model {
	m := e.models[name]
	if m != nil {
		return m
	}
	m = &Model{Model: name, Encoding: tokens.ForModel(name).Name(), Approximate: !tokens.Exact(name)}
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
		bound, expected = DefaultUnboundedOutput, DefaultUnboundedOutput
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
func (e *estimator) finish() *Report {
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
		rep.ExpectedCostUSD = &USD{}
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
func costOf(p pricing.Price, input, output int64) USD {
	u := sluice.Usage{PromptTokens: input, CompletionTokens: output}
	return USD{Online: p.Cost(u, false), Batch: p.Cost(u, true)}
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
