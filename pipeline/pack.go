package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-llm/sluice"
)

// packInstruction opens the system message of a packed request.
const packInstruction = `You are given a JSON array of items, each {"id": ..., "input": ...}. Do the task below ` +
	`for each item's input on its own, and answer with only a JSON array with one ` +
	`{"id": ..., "answer": ...} per item, using the item's id.`

// packEntry is one document in a packed request's user message.
type packEntry struct {
	ID    string `json:"id"`
	Input string `json:"input"`
}

// pack is up to Task.Pack documents' requests for one task sent as one. It holds no body:
// that is rendered again when the engine takes it.
type pack struct {
	items  []*item
	key    [sha256.Size]byte
	single int64 // the prompt tokens of the items' own requests, summed
	prompt int64 // the packed request's prompt tokens
}

// packs sends the stage's items of packed tasks in packs, before the stage's first round,
// and returns the items still to be asked on their own: those of other tasks, those a
// pack's answer did not cover, and those whose own request is already in the cache.
func (r *runner) packs(ctx context.Context, stage int, work []*item) ([]*item, error) {
	var rest, packed []*item
	for _, it := range work {
		if t := r.plan.Spec.Tasks[it.task]; t.Pack > 1 && it.model == 0 {
			packed = append(packed, it)
		} else {
			rest = append(rest, it)
		}
	}
	if len(packed) == 0 {
		return work, nil
	}
	ps, err := r.formPacks(packed)
	if err != nil {
		return nil, err
	}
	var send []*pack
	hits := 0
	for chunk := range slices.Chunk(ps, cacheChunk) {
		keys := make([]string, len(chunk))
		for i, p := range chunk {
			keys[i] = hex.EncodeToString(p.key[:])
		}
		cached, err := r.lookup(ctx, keys)
		if err != nil {
			return nil, err
		}
		for i, p := range chunk {
			if body, ok := cached[keys[i]]; ok {
				hits++
				rest = append(rest, r.unpack(p, body, nil, true)...)
				continue
			}
			ownCached, err := r.allCached(ctx, p)
			if err != nil {
				return nil, err
			}
			if ownCached { // answered before without packing: the round takes them from the cache
				rest = append(rest, p.items...)
				continue
			}
			send = append(send, p)
		}
	}
	r.rep.CacheHits += hits
	if len(send) == 0 {
		return rest, nil
	}
	job := &sluice.Job{
		ID:          fmt.Sprintf("%s_%s_s%dpack", r.cfg.JobPrefix, r.runID, stage),
		State:       sluice.JobRunning,
		Input:       r.plan.Spec.Path,
		Fingerprint: "pipeline:" + r.runID,
		Options:     json.RawMessage(fmt.Sprintf(`{"pipeline":%q,"stage":%d,"round":0,"packed":true}`, r.plan.Spec.Path, stage)),
	}
	info := RoundInfo{Stage: stage, Round: 0, Job: job.ID, Requests: len(send), CacheHits: hits}
	if r.cfg.OnRound != nil {
		r.cfg.OnRound(info)
	}
	if err := r.store.CreateJob(ctx, job); err != nil {
		return nil, fmt.Errorf("create job: %w", err)
	}
	r.rep.Jobs = append(r.rep.Jobs, job.ID)
	src := &source[*pack]{est: r.cfg.Estimator, items: send, request: r.packRequest}
	run, err := r.eng.Start(ctx, job, src, r.runOptions()...)
	if err != nil {
		return nil, err
	}
	werr := r.wait(info, run)
	if werr != nil && !errors.Is(werr, sluice.ErrBudgetExhausted) {
		r.rep.Requests += len(send)
		return nil, fmt.Errorf("job %s: %w", job.ID, werr)
	}
	put := map[string][]byte{}
	err = r.store.Results(ctx, job.ID, 0, 0, func(res *sluice.Result) error {
		if res.Line < 1 || int(res.Line) > len(send) {
			return fmt.Errorf("job %s: unexpected line %d", job.ID, res.Line)
		}
		p := send[res.Line-1]
		send[res.Line-1] = nil
		r.rep.Requests++
		if res.State != sluice.StateDone {
			rest = append(rest, p.items...) // each document asks on its own
			return nil
		}
		put[hex.EncodeToString(p.key[:])] = res.Body
		rest = append(rest, r.unpack(p, res.Body, &res.Usage, false)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read results of job %s: %w", job.ID, err)
	}
	if err := r.save(ctx, put); err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	for _, p := range send {
		if p != nil { // no result: ask its documents on their own
			rest = append(rest, p.items...)
		}
	}
	return rest, nil
}

// formPacks groups items of packed tasks into packs: consecutive items of one task with
// the same system message, up to the task's Pack.
func (r *runner) formPacks(items []*item) ([]*pack, error) {
	var ps []*pack
	var cur *pack
	var curSys string
	for _, it := range items {
		t := r.plan.Spec.Tasks[it.task]
		sys, _, err := r.itemMessages(it)
		if err != nil {
			return nil, err
		}
		if cur == nil || cur.items[0].task != it.task || curSys != sys || len(cur.items) >= t.Pack {
			if cur != nil {
				ps = append(ps, cur)
			}
			cur, curSys = &pack{}, sys
		}
		cur.items = append(cur.items, it)
	}
	if cur != nil {
		ps = append(ps, cur)
	}
	for _, p := range ps {
		body, err := r.renderPack(p)
		if err != nil {
			return nil, err
		}
		p.key = cacheSum(r.cfg.BaseURL, sluice.EndpointChatCompletions, body)
		if p.prompt, err = r.promptTokens(body); err != nil {
			return nil, err
		}
		for _, it := range p.items {
			own, err := r.render(it)
			if err != nil {
				return nil, err
			}
			n, err := r.promptTokens(own)
			if err != nil {
				return nil, err
			}
			p.single += n
		}
	}
	return ps, nil
}

// allCached reports whether every item of p has its own request's answer in the cache.
func (r *runner) allCached(ctx context.Context, p *pack) (bool, error) {
	if r.cfg.Cache == nil {
		return false, nil
	}
	keys := make([]string, 0, len(p.items))
	for _, it := range p.items {
		body, err := r.render(it)
		if err != nil {
			return false, err
		}
		keys = append(keys, CacheKey(r.cfg.BaseURL, sluice.EndpointChatCompletions, body))
	}
	got, err := r.lookup(ctx, keys)
	if err != nil {
		return false, err
	}
	return len(got) == len(keys), nil
}

// itemMessages renders an item's system and user messages.
func (r *runner) itemMessages(it *item) (sys, user string, err error) {
	t := r.plan.Spec.Tasks[it.task]
	fields, err := r.plan.Docs[it.doc].fields()
	if err != nil {
		return "", "", err
	}
	outputs, err := r.table.outputs(int(it.doc), t)
	if err != nil {
		return "", "", err
	}
	return t.messages(fields, outputs)
}

// renderPack makes a pack's request body: the pack instruction and the task's system
// message, then the documents' user messages as a JSON array keyed by document id. Its
// max_tokens is the task's times the documents (none when the task sets none).
func (r *runner) renderPack(p *pack) ([]byte, error) {
	t := r.plan.Spec.Tasks[p.items[0].task]
	entries := make([]packEntry, len(p.items))
	var sys string
	for i, it := range p.items {
		s, user, err := r.itemMessages(it)
		if err != nil {
			return nil, err
		}
		sys = s
		entries[i] = packEntry{ID: docID(r.plan.Docs[it.doc]), Input: user}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(entries); err != nil {
		return nil, fmt.Errorf("tasks.%s: encode packed request: %w", t.Name, err)
	}
	instr := packInstruction
	if sys != "" {
		instr += "\n\nThe task:\n" + sys
	}
	b := chatBody{Model: t.Model, Temperature: t.Temperature, Messages: []chatMessage{
		{Role: "system", Content: instr},
		{Role: "user", Content: strings.TrimSuffix(buf.String(), "\n")},
	}}
	if t.MaxTokens > 0 {
		b.MaxTokens = t.MaxTokens * int64(len(p.items))
	}
	return encodeBody(t, b)
}

// packRequest gives a pack's custom_id, "pack<line>/task", and request body, for source.
func (r *runner) packRequest(p *pack, line int64) (string, []byte, error) {
	body, err := r.renderPack(p)
	return CustomID(fmt.Sprintf("pack%d", line), r.plan.Spec.Tasks[p.items[0].task].Name), body, err
}

// promptTokens counts a chat request body's prompt.
func (r *runner) promptTokens(body []byte) (int64, error) {
	est, err := r.cfg.Estimator.Estimate(&sluice.Request{Method: "POST", URL: sluice.EndpointChatCompletions, Body: body})
	if err != nil {
		return 0, err
	}
	return est.PromptTokens, nil
}

// unpack records a packed answer (from the cache when shared is set, so it cost nothing
// now): the pack's usage is shared among its cells, and each document the answer covers
// with a valid answer gets it. It returns the items to ask on their own.
func (r *runner) unpack(p *pack, body []byte, usage *sluice.Usage, shared bool) []*item {
	t := r.plan.Spec.Tasks[p.items[0].task]
	a, err := parseAnswer(body)
	if err != nil {
		return p.items
	}
	a.useLedger(usage)
	var cost float64
	if r.cfg.Cost != nil {
		cost, _ = r.cfg.Cost(t.Model, a.Usage)
	}
	if shared {
		r.rep.SavedUSD += cost
	} else {
		r.rep.Usage = r.rep.Usage.Add(a.Usage)
		r.rep.CostUSD += cost
	}
	ids := make([]string, len(p.items))
	for i, it := range p.items {
		ids[i] = docID(r.plan.Docs[it.doc])
	}
	answers := map[string]json.RawMessage{}
	if a.Finish != "length" && a.Refusal == "" {
		answers = unpackAnswers(a.Text, ids)
	}
	n := int64(len(p.items))
	var rest []*item
	var covered int64
	for i, it := range p.items {
		cell := r.table.at(int(it.doc), int(it.task))
		if shared {
			cell.cached = true
		} else {
			cell.requests++
			cell.usage = cell.usage.Add(shareUsage(a.Usage, n, int64(i)))
			cell.cost += cost / float64(n)
		}
		raw, ok := answers[ids[i]]
		if !ok {
			rest = append(rest, it)
			continue
		}
		text := string(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			text = s
		}
		value, err := t.check(&answer{Text: text, Finish: "stop"}, it.maxTokens)
		if err != nil {
			rest = append(rest, it)
			continue
		}
		if err := r.table.setAnswer(int(it.doc), int(it.task), 0, text, value); err != nil {
			rest = append(rest, it)
			continue
		}
		covered++
		r.rep.Packed++
	}
	if !shared && covered > 0 {
		// What the covered documents' own prompts would have cost, less the pack's.
		r.rep.PackTokensSaved += p.single*covered/n - p.prompt
	}
	return rest
}

// shareUsage is the i-th of n shares of u, the remainders going to the first shares.
func shareUsage(u sluice.Usage, n, i int64) sluice.Usage {
	part := func(v int64) int64 {
		s := v / n
		if i < v%n {
			s++
		}
		return s
	}
	return sluice.Usage{PromptTokens: part(u.PromptTokens), CompletionTokens: part(u.CompletionTokens), CachedTokens: part(u.CachedTokens)}
}

// unpackAnswers reads a packed answer: a JSON array (possibly in a ```json fence, or after
// some words) of {"id": ..., "answer": ...}. It returns the answers of the ids asked for,
// leaving out those missing, null, or given more than once; nothing when the text holds
// no such array.
func unpackAnswers(text string, ids []string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	start := strings.IndexByte(text, '[')
	if start < 0 {
		return out
	}
	var elems []json.RawMessage
	if err := json.NewDecoder(strings.NewReader(text[start:])).Decode(&elems); err != nil {
		return out
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	seen := map[string]int{}
	for _, e := range elems {
		var el struct {
			ID     json.RawMessage `json:"id"`
			Answer json.RawMessage `json:"answer"`
		}
		if json.Unmarshal(e, &el) != nil || len(el.ID) == 0 {
			continue
		}
		var id string
		if json.Unmarshal(el.ID, &id) != nil {
			id = string(el.ID) // a numeric id
		}
		if !want[id] || len(el.Answer) == 0 || string(el.Answer) == "null" {
			continue
		}
		seen[id]++
		out[id] = el.Answer
	}
	for id, n := range seen {
		if n > 1 { // which one is meant is not known
			delete(out, id)
		}
	}
	return out
}
