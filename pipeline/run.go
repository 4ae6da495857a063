package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ids"
)

// cacheChunk is how many keys one cache lookup or store covers.
const cacheChunk = 500

// RunConfig configures Run.
type RunConfig struct {
	// BaseURL identifies the upstream in cache keys: an answer from one upstream is never
	// reused for another.
	BaseURL string
	// Cache holds answers by request content; nil sends every request.
	Cache Cache
	// Estimator counts each request's tokens for the engine's limits; required.
	Estimator sluice.Estimator
	// Cost prices usage; nil leaves costs at 0. It also prices requests for Budget.
	Cost CostFunc
	// Budget caps what the whole run may spend, over all its stages and rounds: every
	// round's engine job reserves its requests' worst cases against one shared
	// sluice.BudgetPool, so the run stops before the cap would be crossed and the cells
	// it did not reach say "budget exhausted". The zero value means no cap (the engine's
	// own Config.Budget then applies to each round separately). A MaxCost needs Cost.
	Budget sluice.Budget
	// Served lists the models the upstream serves, when known. A task with fallbacks
	// skips models not in it instead of sending requests that can only fail. nil means
	// unknown: every model is tried.
	Served []string
	// JobPrefix starts the ids of the jobs Run creates in the store (default "pipeline").
	JobPrefix string
	// TempDir holds the temporary file the table's answers are kept in until the table
	// is closed ("": the system's temporary directory).
	TempDir string
	// OnRound, when set, is called before each round of requests is sent.
	OnRound func(RoundInfo)
	// OnStart, when set, is called once a round's engine run has started, so that its
	// progress can be shown (Run.Progress); the function it returns, if not nil, is
	// called when the run has ended.
	OnStart func(RoundInfo, *sluice.Run) (ended func())
}

// RoundInfo describes one round: the requests of one stage sent as one engine job.
// Round 0 is a stage's packed requests, sent before its first round.
type RoundInfo struct {
	Stage, Round int
	Job          string // the engine job sending the requests; "" when none are sent
	Requests     int    // sent in this round
	CacheHits    int    // answered from the cache (or by a duplicate request) instead
}

// Report sums up a pipeline run.
type Report struct {
	// Requests is how many requests were sent to the upstream (once each: the engine's
	// own retries are in Attempts of its jobs), CacheHits how many were answered from the
	// cache or by an identical request of the same run instead. A packed request counts
	// as one.
	Requests  int `json:"requests"`
	CacheHits int `json:"cache_hits"`
	// OK counts table cells that got a valid answer, Failed those of runnable rows that
	// carry an error, and Invalid those of rows that could not be run (left out with
	// --skip-invalid).
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Invalid int `json:"invalid"`
	// Usage and CostUSD are what this run spent; SavedUSD what the cache hits would have
	// cost.
	Usage    sluice.Usage `json:"usage"`
	CostUSD  float64      `json:"cost_usd"`
	SavedUSD float64      `json:"saved_usd"`
	// Packed counts cells answered by a packed request (Task.Pack); PackTokensSaved
	// estimates the prompt tokens packing saved: the prompts the answered documents'
	// own requests would have sent, less the packed requests' prompts.
	Packed          int   `json:"packed"`
	PackTokensSaved int64 `json:"pack_tokens_saved"`
	// Jobs are the engine jobs the run created, one per round (and one per stage for
	// its packed requests).
	Jobs []string `json:"jobs"`
}

// item is one document's request for one task, on its way through the rounds. It holds
// no body: that is rendered when needed, from the document and the answers so far.
type item struct {
	doc       int32
	task      int16
	model     int16 // index into the task's models
	tries     int32 // invalid answers on this model so far
	maxTokens int64 // max_tokens of the next request
}

// runner is one Run's state.
type runner struct {
	eng   *sluice.Engine
	store sluice.Store
	plan  *Plan
	cfg   RunConfig
	table *Table
	rep   *Report
	runID string
	pool  *sluice.BudgetPool // nil: no pipeline-wide budget
}

// Run runs the plan's runnable documents through eng, stage by stage, keeping each
// round's requests in store as an engine job, and returns the table of answers, which
// the caller must Close. Rows with problems get their error in every cell. A run that
// stops early (an interrupt, a fatal upstream error, the budget) returns the error with
// the table so far; answers already received are in the cache, so running again sends
// only the rest.
//
// Memory grows with the number of cells, not with the documents or the answers: the
// documents are read again from their file, request bodies are rendered as the engine
// takes them, and answers are kept in a temporary file until the table is closed.
func Run(ctx context.Context, eng *sluice.Engine, store sluice.Store, plan *Plan, cfg RunConfig) (*Table, *Report, error) {
	if cfg.Estimator == nil {
		return nil, nil, errors.New("pipeline: RunConfig.Estimator is required")
	}
	if cfg.JobPrefix == "" {
		cfg.JobPrefix = "pipeline"
	}
	pool, err := newPool(cfg)
	if err != nil {
		return nil, nil, err
	}
	table, err := newTable(plan, cfg.TempDir)
	if err != nil {
		return nil, nil, err
	}
	r := &runner{
		eng: eng, store: store, plan: plan, cfg: cfg,
		table: table, rep: &Report{},
		runID: time.Now().UTC().Format("20060102_150405") + "_" + ids.Hex(3),
		pool:  pool,
	}
	for stage := 1; stage <= plan.Spec.Stages && err == nil; stage++ {
		err = r.stage(ctx, stage)
	}
	r.table.finish(err)
	r.rep.OK, r.rep.Failed, r.rep.Invalid = r.table.counts()
	return r.table, r.rep, err
}

// stage runs every task of one stage over every document, round after round until each
// cell has an answer or an error.
func (r *runner) stage(ctx context.Context, stage int) error {
	var work []*item
	for ti, t := range r.plan.Spec.Tasks {
		if t.Stage != stage {
			continue
		}
		for di, d := range r.plan.Docs {
			if d.Err != nil {
				continue
			}
			if failed := r.failedDep(di, t); failed != "" {
				r.table.setErr(di, ti, fmt.Sprintf("not run: tasks.%s failed", failed))
				continue
			}
			it := &item{doc: int32(di), task: int16(ti), maxTokens: t.MaxTokens, model: -1}
			if r.advance(it) {
				work = append(work, it)
			}
		}
	}
	work, err := r.packs(ctx, stage, work)
	if err != nil {
		return err
	}
	for round := 1; len(work) > 0; round++ {
		if work, err = r.round(ctx, stage, round, work); err != nil {
			return err
		}
	}
	return nil
}

// failedDep names a dependency of t that has no answer for the document.
func (r *runner) failedDep(doc int, t *Task) string {
	for _, d := range t.Deps {
		i := slices.IndexFunc(r.plan.Spec.Tasks, func(x *Task) bool { return x.Name == d })
		if r.table.err(doc, i) != "" {
			return d
		}
	}
	return ""
}

// advance moves an item to its task's next model that the upstream serves, resetting
// its tries and max_tokens. It reports false, and records the error, when none is left.
func (r *runner) advance(it *item) bool {
	t := r.plan.Spec.Tasks[it.task]
	models := t.Models()
	for it.model++; int(it.model) < len(models); it.model++ {
		if r.cfg.Served == nil || len(models) == 1 || slices.Contains(r.cfg.Served, models[it.model]) {
			it.tries, it.maxTokens = 0, t.MaxTokens
			return true
		}
	}
	if r.table.err(int(it.doc), int(it.task)) == "" {
		r.table.setErr(int(it.doc), int(it.task), fmt.Sprintf("none of the models %v is served by the upstream", models))
	}
	return false
}

// roundState is one round's requests as they are sorted.
type roundState struct {
	send  []*item             // to be sent, one per distinct body
	keys  [][sha256.Size]byte // the cache keys of send
	first map[[16]byte]int32  // a body's key (its first half) → its item in send
	dups  map[int32][]*item   // an item in send → the other items with its body
	next  []*item             // to ask again in the next round
	hits  int                 // answered from the cache or by a duplicate
}

// round sends one round of requests and returns the items to ask again. Its items are
// taken in chunks: each is rendered, looked up in the cache, and kept only as a key.
func (r *runner) round(ctx context.Context, stage, round int, work []*item) ([]*item, error) {
	rs := &roundState{first: map[[16]byte]int32{}, dups: map[int32][]*item{}}
	for chunk := range slices.Chunk(work, cacheChunk) {
		if err := r.prepare(ctx, chunk, rs); err != nil {
			return nil, err
		}
	}
	rs.first = nil
	r.rep.CacheHits += rs.hits
	if len(rs.send) == 0 {
		if r.cfg.OnRound != nil {
			r.cfg.OnRound(RoundInfo{Stage: stage, Round: round, CacheHits: rs.hits})
		}
		return rs.next, nil
	}
	job := &sluice.Job{
		ID:          fmt.Sprintf("%s_%s_s%dr%d", r.cfg.JobPrefix, r.runID, stage, round),
		State:       sluice.JobRunning,
		Input:       r.plan.Spec.Path,
		Fingerprint: "pipeline:" + r.runID,
		Options:     json.RawMessage(fmt.Sprintf(`{"pipeline":%q,"stage":%d,"round":%d}`, r.plan.Spec.Path, stage, round)),
	}
	info := RoundInfo{Stage: stage, Round: round, Job: job.ID, Requests: len(rs.send), CacheHits: rs.hits}
	if r.cfg.OnRound != nil {
		r.cfg.OnRound(info)
	}
	if err := r.store.CreateJob(ctx, job); err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}
	r.rep.Jobs = append(r.rep.Jobs, job.ID)
	src := &source[*item]{est: r.cfg.Estimator, items: rs.send, request: r.itemRequest}
	run, err := r.eng.Start(ctx, job, src, r.runOptions()...)
	if err != nil {
		return nil, err
	}
	if err := r.wait(info, run); err != nil {
		if !errors.Is(err, sluice.ErrBudgetExhausted) {
			r.rep.Requests += len(rs.send)
			return nil, fmt.Errorf("job %s: %w", job.ID, err)
		}
		// The answers that came in before the budget stopped the round are paid for:
		// record and cache them; the cells not reached say why.
		n, cerr := r.collect(ctx, job.ID, rs)
		r.rep.Requests += n
		if cerr != nil {
			return nil, errors.Join(err, cerr)
		}
		return nil, err
	}
	r.rep.Requests += len(rs.send)
	if _, err := r.collect(ctx, job.ID, rs); err != nil {
		return nil, err
	}
	return rs.next, nil
}

// runOptions are the options of every round's engine run.
func (r *runner) runOptions() []sluice.RunOption {
	if r.pool == nil {
		return nil
	}
	return []sluice.RunOption{sluice.WithBudgetPool(r.pool)}
}

// newPool makes the run's budget pool, or nil when cfg.Budget sets no cap.
func newPool(cfg RunConfig) (*sluice.BudgetPool, error) {
	b := cfg.Budget
	if b.MaxCost < 0 || b.MaxTokens < 0 {
		return nil, errors.New("pipeline: budget must not be negative")
	}
	if b.MaxCost == 0 && b.MaxTokens == 0 {
		return nil, nil
	}
	if b.MaxCost > 0 && cfg.Cost == nil {
		return nil, errors.New("pipeline: a cost budget needs RunConfig.Cost")
	}
	var cost func(string, sluice.Usage) float64
	if cfg.Cost != nil {
		cost = func(model string, u sluice.Usage) float64 { c, _ := cfg.Cost(model, u); return c }
	}
	return sluice.NewBudgetPool(b, cost, 0, 0), nil
}

// prepare renders a chunk of a round's items and sorts them: answered from the cache,
// sharing the body of an item already to be sent, or to be sent.
func (r *runner) prepare(ctx context.Context, chunk []*item, rs *roundState) error {
	keys := make([]string, 0, len(chunk))
	sums := make([][sha256.Size]byte, 0, len(chunk))
	ready := make([]*item, 0, len(chunk))
	for _, it := range chunk {
		body, err := r.render(it)
		if err != nil {
			r.table.setErr(int(it.doc), int(it.task), err.Error())
			continue
		}
		sum := cacheSum(r.cfg.BaseURL, sluice.EndpointChatCompletions, body)
		sums = append(sums, sum)
		keys = append(keys, hex.EncodeToString(sum[:]))
		ready = append(ready, it)
	}
	cached, err := r.lookup(ctx, keys)
	if err != nil {
		return err
	}
	for i, it := range ready {
		if body, ok := cached[keys[i]]; ok {
			rs.hits++
			again, err := r.answer(it, body, nil, true)
			if err != nil {
				return err
			}
			rs.next = append(rs.next, again...)
			continue
		}
		half := [16]byte(sums[i][:16]) // 128 bits tell bodies apart as well as 256
		if j, dup := rs.first[half]; dup {
			rs.hits++
			rs.dups[j] = append(rs.dups[j], it)
			continue
		}
		rs.first[half] = int32(len(rs.send))
		rs.send = append(rs.send, it)
		rs.keys = append(rs.keys, sums[i])
	}
	return nil
}

// render makes an item's request body.
func (r *runner) render(it *item) ([]byte, error) {
	t := r.plan.Spec.Tasks[it.task]
	fields, err := r.plan.Docs[it.doc].fields()
	if err != nil {
		return nil, err
	}
	outputs, err := r.table.outputs(int(it.doc), t)
	if err != nil {
		return nil, err
	}
	return t.render(fields, outputs, t.Models()[it.model], it.maxTokens)
}

// itemRequest gives an item's custom_id and request body, for source.
func (r *runner) itemRequest(it *item, _ int64) (string, []byte, error) {
	body, err := r.render(it)
	return CustomID(r.plan.Docs[it.doc].ID, r.plan.Spec.Tasks[it.task].Name), body, err
}

// collect reads the answers of a round's job, records them, and caches the valid ones.
// It returns how many requests ended (answered, or failed for good).
func (r *runner) collect(ctx context.Context, jobID string, rs *roundState) (int, error) {
	put := map[string][]byte{}
	n := 0
	err := r.store.Results(ctx, jobID, 0, 0, func(res *sluice.Result) error {
		if res.Line < 1 || int(res.Line) > len(rs.send) {
			return fmt.Errorf("job %s: unexpected line %d", jobID, res.Line)
		}
		n++
		idx := int32(res.Line - 1)
		for i, it := range slices.Concat([]*item{rs.send[idx]}, rs.dups[idx]) {
			if res.State != sluice.StateDone {
				rs.next = append(rs.next, r.fail(it, errorMessage(res))...)
				continue
			}
			again, err := r.answer(it, res.Body, &res.Usage, i > 0)
			if err != nil {
				return err
			}
			if i == 0 && len(again) == 0 && r.table.err(int(it.doc), int(it.task)) == "" {
				put[hex.EncodeToString(rs.keys[idx][:])] = res.Body
			}
			rs.next = append(rs.next, again...)
		}
		if len(put) >= cacheChunk {
			if err := r.save(ctx, put); err != nil {
				return err
			}
			clear(put)
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("read results of job %s: %w", jobID, err)
	}
	return n, r.save(ctx, put)
}

// answer records an answer for it (from the cache or a duplicate when shared is set, so
// its usage was paid elsewhere) and returns it when it must be asked again. usage is the
// ledger's record of the answer's usage (nil for a cached answer), which the upstream
// read from whatever fields its provider uses; the body's usage object is the fallback.
func (r *runner) answer(it *item, body []byte, usage *sluice.Usage, shared bool) ([]*item, error) {
	t := r.plan.Spec.Tasks[it.task]
	cell := r.table.at(int(it.doc), int(it.task))
	a, err := parseAnswer(body)
	if err != nil {
		return r.fail(it, err.Error()), nil
	}
	a.useLedger(usage)
	model := t.Models()[it.model]
	if shared {
		cell.cached = true
		if r.cfg.Cost != nil {
			c, _ := r.cfg.Cost(model, a.Usage)
			r.rep.SavedUSD += c
		}
	} else {
		cell.requests++
		cell.usage = cell.usage.Add(a.Usage)
		r.rep.Usage = r.rep.Usage.Add(a.Usage)
		if r.cfg.Cost != nil {
			c, _ := r.cfg.Cost(model, a.Usage)
			cell.cost += c
			r.rep.CostUSD += c
		}
	}
	value, err := t.check(a, it.maxTokens)
	if err != nil {
		return r.invalid(it, err), nil
	}
	return nil, r.table.setAnswer(int(it.doc), int(it.task), int(it.model), a.Text, value)
}

// invalid handles an answer that failed its checks: ask again (with twice the
// max_tokens after a truncation) until the task's retries are spent, then the next model.
func (r *runner) invalid(it *item, err error) []*item {
	t := r.plan.Spec.Tasks[it.task]
	it.tries++
	msg := fmt.Sprintf("%s: invalid answer after %d attempts: %v", t.Models()[it.model], it.tries, err)
	if int(it.tries) <= t.Retries {
		if errors.Is(err, errTruncated) && it.maxTokens > 0 {
			it.maxTokens = min(it.maxTokens*2, max(DefaultMaxTokensCap, t.MaxTokens))
		}
		r.table.setErr(int(it.doc), int(it.task), msg)
		return []*item{it}
	}
	return r.fail(it, msg)
}

// fail records a failed request and moves the item to its next model, if any.
func (r *runner) fail(it *item, msg string) []*item {
	t := r.plan.Spec.Tasks[it.task]
	if model := t.Models()[it.model]; !strings.HasPrefix(msg, model+": ") {
		msg = model + ": " + msg
	}
	r.table.addFailure(int(it.doc), int(it.task), msg)
	if r.advance(it) {
		return []*item{it}
	}
	return nil
}

// lookup asks the cache for keys, in chunks.
func (r *runner) lookup(ctx context.Context, keys []string) (map[string][]byte, error) {
	hits := map[string][]byte{}
	if r.cfg.Cache == nil {
		return hits, nil
	}
	for chunk := range slices.Chunk(keys, cacheChunk) {
		got, err := r.cfg.Cache.GetCached(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("read cache: %w", err)
		}
		for k, v := range got {
			hits[k] = v
		}
	}
	return hits, nil
}

// save stores answers in the cache, in chunks.
func (r *runner) save(ctx context.Context, entries map[string][]byte) error {
	if r.cfg.Cache == nil || len(entries) == 0 {
		return nil
	}
	keys := sortedKeys(entries)
	for chunk := range slices.Chunk(keys, cacheChunk) {
		part := make(map[string][]byte, len(chunk))
		for _, k := range chunk {
			part[k] = entries[k]
		}
		if err := r.cfg.Cache.PutCached(ctx, part); err != nil {
			return fmt.Errorf("write cache: %w", err)
		}
	}
	return nil
}

// source feeds one round's requests to the engine, rendering each as the engine takes it:
// the ledger keeps the bodies, so the round never holds them all. request gives the
// custom_id and body of the request for items[i], on line i+1; a body that fails to render
// or to be estimated becomes an error line.
type source[T any] struct {
	est     sluice.Estimator
	items   []T
	request func(x T, line int64) (customID string, body []byte, err error)
	next    int
}

func (s *source[T]) Next() (sluice.NewRequest, error) {
	if s.next >= len(s.items) {
		return sluice.NewRequest{}, io.EOF
	}
	x := s.items[s.next]
	s.next++
	line := int64(s.next)
	customID, body, err := s.request(x, line)
	req := sluice.Request{CustomID: customID, Method: "POST", URL: sluice.EndpointChatCompletions}
	if err != nil {
		return sluice.NewRequest{Line: line, Request: req, Err: &sluice.LineError{Line: line, Field: "body", Msg: err.Error()}}, nil //nolint:nilerr // a bad document is carried in the request, not returned
	}
	req.Body = body
	est, err := s.est.Estimate(&req)
	if err != nil {
		return sluice.NewRequest{Line: line, Request: req, Err: &sluice.LineError{Line: line, Field: "body", Msg: err.Error()}}, nil //nolint:nilerr // a bad document is carried in the request, not returned
	}
	return sluice.NewRequest{Line: line, Request: req, Estimate: est}, nil
}

// wait waits for a round's engine run, showing it to OnStart meanwhile.
func (r *runner) wait(info RoundInfo, run *sluice.Run) error {
	if r.cfg.OnStart != nil {
		if ended := r.cfg.OnStart(info, run); ended != nil {
			defer ended()
		}
	}
	return run.Wait()
}
