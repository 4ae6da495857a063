package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
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
	// Cost prices usage; nil leaves costs at 0.
	Cost CostFunc
	// Served lists the models the upstream serves, when known. A task with fallbacks
	// skips models not in it instead of sending requests that can only fail. nil means
	// unknown: every model is tried.
	Served []string
	// JobPrefix starts the ids of the jobs Run creates in the store (default "pipeline").
	JobPrefix string
	// OnRound, when set, is called before each round of requests is sent.
	OnRound func(RoundInfo)
}

// RoundInfo describes one round: the requests of one stage sent as one engine job.
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
	// cache or by an identical request of the same run instead.
	Requests  int `json:"requests"`
	CacheHits int `json:"cache_hits"`
	// Cells counts table cells that got a valid answer (OK) and those that carry an error.
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// Usage and CostUSD are what this run spent; SavedUSD what the cache hits would have
	// cost.
	Usage    sluice.Usage `json:"usage"`
	CostUSD  float64      `json:"cost_usd"`
	SavedUSD float64      `json:"saved_usd"`
	// Jobs are the engine jobs the run created, one per round.
	Jobs []string `json:"jobs"`
}

// item is one document's request for one task, on its way through the rounds.
type item struct {
	doc, task int
	model     int   // index into the task's models
	tries     int   // invalid answers on this model so far
	maxTokens int64 // max_tokens of the next request
	body      []byte
	key       string
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
}

// Run runs the plan's runnable documents through eng, stage by stage, keeping each
// round's requests in store as an engine job, and returns the table of answers. Rows
// with problems get their error in every cell. A run that stops early (an interrupt, a
// fatal upstream error, the budget) returns the error with the table so far; answers
// already received are in the cache, so running again sends only the rest.
func Run(ctx context.Context, eng *sluice.Engine, store sluice.Store, plan *Plan, cfg RunConfig) (*Table, *Report, error) {
	if cfg.Estimator == nil {
		return nil, nil, errors.New("pipeline: RunConfig.Estimator is required")
	}
	if cfg.JobPrefix == "" {
		cfg.JobPrefix = "pipeline"
	}
	r := &runner{
		eng: eng, store: store, plan: plan, cfg: cfg,
		table: newTable(plan), rep: &Report{},
		runID: time.Now().UTC().Format("20060102_150405") + "_" + randomHex(3),
	}
	var err error
	for stage := 1; stage <= plan.Spec.Stages && err == nil; stage++ {
		err = r.stage(ctx, stage)
	}
	r.table.finish(err)
	r.rep.OK, r.rep.Failed = r.table.counts()
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
				r.table.Cells[di][ti].Err = fmt.Sprintf("not run: tasks.%s failed", failed)
				continue
			}
			it := &item{doc: di, task: ti, maxTokens: t.MaxTokens, model: -1}
			if r.advance(it) {
				work = append(work, it)
			}
		}
	}
	for round := 1; len(work) > 0; round++ {
		var err error
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
		if r.table.Cells[doc][i].Err != "" {
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
	for it.model++; it.model < len(models); it.model++ {
		if r.cfg.Served == nil || len(models) == 1 || slices.Contains(r.cfg.Served, models[it.model]) {
			it.tries, it.maxTokens = 0, t.MaxTokens
			return true
		}
	}
	cell := &r.table.Cells[it.doc][it.task]
	if cell.Err == "" {
		cell.Err = fmt.Sprintf("none of the models %v is served by the upstream", models)
	}
	return false
}

// round sends one round of requests and returns the items to ask again.
func (r *runner) round(ctx context.Context, stage, round int, work []*item) ([]*item, error) {
	keys := make([]string, 0, len(work))
	ready := work[:0]
	for _, it := range work {
		t := r.plan.Spec.Tasks[it.task]
		body, err := t.render(r.plan.Docs[it.doc], r.table.outputs(it.doc, t), t.Models()[it.model], it.maxTokens)
		if err != nil {
			r.table.Cells[it.doc][it.task].Err = err.Error()
			continue
		}
		it.body, it.key = body, CacheKey(r.cfg.BaseURL, sluice.EndpointChatCompletions, body)
		keys = append(keys, it.key)
		ready = append(ready, it)
	}
	hits, err := r.lookup(ctx, keys)
	if err != nil {
		return nil, err
	}
	// One request per distinct body: duplicates share its answer.
	groups := map[string][]*item{}
	var send []*item
	var next []*item
	hitCount := 0
	for _, it := range ready {
		if body, ok := hits[it.key]; ok {
			hitCount++
			next = append(next, r.answer(it, body, true)...)
			continue
		}
		if _, dup := groups[it.key]; !dup {
			send = append(send, it)
		} else {
			hitCount++
		}
		groups[it.key] = append(groups[it.key], it)
	}
	r.rep.CacheHits += hitCount
	if len(send) == 0 {
		if r.cfg.OnRound != nil {
			r.cfg.OnRound(RoundInfo{Stage: stage, Round: round, CacheHits: hitCount})
		}
		return next, nil
	}
	job := &sluice.Job{
		ID:          fmt.Sprintf("%s_%s_s%dr%d", r.cfg.JobPrefix, r.runID, stage, round),
		State:       sluice.JobRunning,
		Input:       r.plan.Spec.Path,
		Fingerprint: "pipeline:" + r.runID,
		Options:     json.RawMessage(fmt.Sprintf(`{"pipeline":%q,"stage":%d,"round":%d}`, r.plan.Spec.Path, stage, round)),
	}
	if r.cfg.OnRound != nil {
		r.cfg.OnRound(RoundInfo{Stage: stage, Round: round, Job: job.ID, Requests: len(send), CacheHits: hitCount})
	}
	if err := r.store.CreateJob(ctx, job); err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}
	r.rep.Jobs = append(r.rep.Jobs, job.ID)
	r.rep.Requests += len(send)
	run, err := r.eng.Start(ctx, job, &source{items: send, docs: r.plan.Docs, tasks: r.plan.Spec.Tasks, est: r.cfg.Estimator})
	if err != nil {
		return nil, err
	}
	if err := run.Wait(); err != nil {
		return nil, fmt.Errorf("job %s: %w", job.ID, err)
	}
	put := map[string][]byte{}
	err = r.store.Results(ctx, job.ID, 0, 0, func(res *sluice.Result) error {
		if res.Line < 1 || int(res.Line) > len(send) {
			return fmt.Errorf("job %s: unexpected line %d", job.ID, res.Line)
		}
		first := send[res.Line-1]
		for i, it := range groups[first.key] {
			if res.State != sluice.StateDone {
				next = append(next, r.fail(it, errorMessage(res))...)
				continue
			}
			again := r.answer(it, res.Body, i > 0)
			if i == 0 && len(again) == 0 && r.table.Cells[it.doc][it.task].Err == "" {
				put[it.key] = res.Body
			}
			next = append(next, again...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read results of job %s: %w", job.ID, err)
	}
	if err := r.save(ctx, put); err != nil {
		return nil, err
	}
	return next, nil
}

// answer records an answer for it (from the cache or a duplicate when shared is set, so
// its usage was paid elsewhere) and returns it when it must be asked again.
func (r *runner) answer(it *item, body []byte, shared bool) []*item {
	t := r.plan.Spec.Tasks[it.task]
	cell := &r.table.Cells[it.doc][it.task]
	a, err := parseAnswer(body)
	if err != nil {
		return r.fail(it, err.Error())
	}
	model := t.Models()[it.model]
	if shared {
		cell.Cached = true
		if r.cfg.Cost != nil {
			c, _ := r.cfg.Cost(model, a.Usage)
			r.rep.SavedUSD += c
		}
	} else {
		cell.Requests++
		cell.Usage = cell.Usage.Add(a.Usage)
		r.rep.Usage = r.rep.Usage.Add(a.Usage)
		if r.cfg.Cost != nil {
			c, _ := r.cfg.Cost(model, a.Usage)
			cell.CostUSD += c
			r.rep.CostUSD += c
		}
	}
	value, err := t.check(a, it.maxTokens)
	if err != nil {
		return r.invalid(it, err)
	}
	cell.Err, cell.Model, cell.Text, cell.Value = "", model, a.Text, value
	return nil
}

// invalid handles an answer that failed its checks: ask again (with twice the
// max_tokens after a truncation) until the task's retries are spent, then the next model.
func (r *runner) invalid(it *item, err error) []*item {
	t := r.plan.Spec.Tasks[it.task]
	it.tries++
	msg := fmt.Sprintf("%s: invalid answer after %d attempts: %v", t.Models()[it.model], it.tries, err)
	if it.tries <= t.Retries {
		if errors.Is(err, errTruncated) && it.maxTokens > 0 {
			it.maxTokens = min(it.maxTokens*2, max(DefaultMaxTokensCap, t.MaxTokens))
		}
		r.table.Cells[it.doc][it.task].Err = msg
		return []*item{it}
	}
	return r.fail(it, msg)
}

// fail records a failed request and moves the item to its next model, if any.
func (r *runner) fail(it *item, msg string) []*item {
	t := r.plan.Spec.Tasks[it.task]
	cell := &r.table.Cells[it.doc][it.task]
	if model := t.Models()[it.model]; !strings.HasPrefix(msg, model+": ") {
		msg = model + ": " + msg
	}
	cell.Errs = append(cell.Errs, msg)
	cell.Err = strings.Join(cell.Errs, "; ")
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

// source feeds one round's requests to the engine, rendering nothing new: the bodies
// were made when the round was planned.
type source struct {
	items []*item
	docs  []*Document
	tasks []*Task
	est   sluice.Estimator
	next  int
}

func (s *source) Next() (sluice.NewRequest, error) {
	if s.next >= len(s.items) {
		return sluice.NewRequest{}, io.EOF
	}
	it := s.items[s.next]
	s.next++
	line := int64(s.next)
	req := sluice.Request{
		CustomID: CustomID(s.docs[it.doc].ID, s.tasks[it.task].Name),
		Method:   "POST",
		URL:      sluice.EndpointChatCompletions,
		Body:     it.body,
	}
	it.body = nil // the ledger has it now
	est, err := s.est.Estimate(&req)
	if err != nil {
		return sluice.NewRequest{Line: line, Request: req, Err: &sluice.LineError{Line: line, Field: "body", Msg: err.Error()}}, nil
	}
	return sluice.NewRequest{Line: line, Request: req, Estimate: est}, nil
}
