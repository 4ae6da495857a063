package sluice

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultUnreachableAfter is how long an upstream that never answered may refuse
// connections before a run gives up on it.
const DefaultUnreachableAfter = 10 * time.Second

// notFoundStreak is how many model_not_found answers in a row, for a model that answered
// before, make sluice ask the upstream's model list whether the model is gone.
const notFoundStreak = 3

// listTimeout bounds one GET /models.
const listTimeout = 10 * time.Second

// Verdicts on an attempt that only the evidence gathered so far can give.
const (
	attemptUnreachable attemptKind = 100 + iota // no answer at all, for too long, and never one before
	attemptNoEndpoint                           // 404 on every path: the base URL is wrong
)

// evidence is what an Engine has learned of its upstream from the answers so far: which
// models answered, how many model_not_found answers came in a row, and the faults of the
// upstream. It decides the few cases where one answer says something about the whole job,
// so that no request is failed without being sent and a run stops only on proof.
// The zero value is ready; it is safe for concurrent use.
type evidence struct {
	mu       sync.Mutex
	models   map[string]*modelEvidence
	faults   int64     // upstream faults seen: no answer, 5xx, a broken 2xx body
	lastErr  string    // the last fault's message
	failing  time.Time // the first fault since the last answer; zero when the last was one
	silentN  int       // attempts without any answer since the Engine was made, before any answer
	silentAt time.Time // the first of them
	counted  int64     // answers whose usage sluice counted (Response.UsageCounted)

	endpointOnce sync.Once
	endpointErr  error // set when the base URL answers 404 to every path
}

// modelEvidence is what is known of one model.
type modelEvidence struct {
	ok       bool // an answer for the model succeeded
	misses   int  // model_not_found answers since the last success or check
	checking bool // a GET /models is in flight for it
	listed   []string
}

func (ev *evidence) model(name string) *modelEvidence {
	if ev.models == nil {
		ev.models = map[string]*modelEvidence{}
	}
	m := ev.models[name]
	if m == nil {
		m = &modelEvidence{}
		ev.models[name] = m
	}
	return m
}

// weigh records what res says of the upstream and, where the evidence decides it, turns
// its kind into a verdict about the whole run: a model_not_found answer becomes a retry
// unless the model is proven gone (or never worked), a connection error an unreachable
// upstream once nothing has answered for long enough, a plain 404 a wrong base URL. It
// runs on the attempt's goroutine, so the GET /models it may send holds up no one else.
func (r *Run) weigh(res *attemptResult, now time.Time) {
	e, ev := r.e, &r.e.ev
	model := res.item.Estimate.Model
	ev.observe(res, now)
	switch {
	case res.kind == attemptModel:
		res.kind = r.weighNotFound(model)
	case res.kind == attemptRetry && res.resp == nil && res.err != nil && res.err.Code == CodeConnection:
		if !e.answered.Load() && ev.silentFor(now) >= e.cfg.UnreachableAfter {
			res.kind = attemptUnreachable
			// Abort from here: the dispatcher may be waiting on the open breaker, not
			// reading results, for a whole cooldown.
			r.abort(r.verdictError(*res))
		}
	case res.kind == attemptFailed && res.err != nil && res.err.StatusCode == http.StatusNotFound && !e.answered.Load():
		if r.endpointMissing() != nil {
			res.kind = attemptNoEndpoint
		}
	}
	if res.kind != attemptInterrupted && res.kind != attemptDone && r.sendCtx.Err() != nil {
		// Cut off while the evidence was being checked. An answer that made its request
		// done is kept whatever happened since: it was paid for, and dropping it would
		// send (and pay for) the request again on the next run.
		res.kind = attemptInterrupted
	}
}

// observe updates the upstream's health from one attempt.
func (ev *evidence) observe(res *attemptResult, now time.Time) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if res.resp != nil && res.resp.UsageCounted && res.kind != attemptInterrupted {
		ev.counted++
	}
	switch {
	case res.kind == attemptInterrupted:
	case res.kind == attemptDone:
		ev.model(res.item.Estimate.Model).ok = true
		ev.model(res.item.Estimate.Model).misses = 0
		ev.failing, ev.silentN = time.Time{}, 0
	case res.err == nil:
	case res.resp == nil || res.err.StatusCode >= 500 || res.err.StatusCode/100 == 2:
		ev.faults++
		ev.lastErr = res.err.Error()
		if ev.failing.IsZero() {
			ev.failing = now
		}
		if res.resp == nil {
			if ev.silentN == 0 {
				ev.silentAt = now
			}
			ev.silentN++
		}
	case res.err.StatusCode != http.StatusTooManyRequests:
		ev.failing, ev.silentN = time.Time{}, 0 // an answer: the upstream is there
	}
}

// silentFor is how long attempts have gone without any answer, 0 after fewer than 3.
func (ev *evidence) silentFor(now time.Time) time.Duration {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.silentN < 3 {
		return 0
	}
	return now.Sub(ev.silentAt)
}

// health is the upstream's state for Progress: faults so far, the last one's message,
// since when the upstream has been failing (zero when its last answer was good), and the
// answers whose usage sluice counted.
func (ev *evidence) health() (faults int64, lastErr string, failing time.Time, counted int64) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.faults, ev.lastErr, ev.failing, ev.counted
}

// weighNotFound decides what a model_not_found answer means. For a model that never
// answered, the run stops when nothing else answered either (the key, the base URL or the
// model is wrong for the whole run; the model list is read for the message), and
// otherwise the request fails on its own 404 (a job of several models, one of them not
// served: each of its requests is sent and fails by its own answer). For a model that
// answered before, the request is retried, and after notFoundStreak such answers in a
// row the model list is asked: only a list without the model stops the run.
func (r *Run) weighNotFound(model string) attemptKind {
	ev := &r.e.ev
	ev.mu.Lock()
	m := ev.model(model)
	if !m.ok && r.e.answered.Load() {
		ev.mu.Unlock()
		return attemptFailed
	}
	m.misses++
	ok := m.ok
	check := !ok || !m.checking && m.misses >= notFoundStreak
	if check {
		m.checking = true
	}
	ev.mu.Unlock()
	if !check {
		return attemptRetry
	}
	listed, known := r.listModels()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	m.checking, m.misses = false, 0
	if known {
		m.listed = listed
	}
	if !ok || known && !slices.Contains(listed, model) {
		return attemptModel // nothing for the model ever worked, or it is proven gone
	}
	return attemptRetry
}

// listModels asks the upstream for its models; known is false when it cannot say.
func (r *Run) listModels() (models []string, known bool) {
	ml, ok := r.e.up.(ModelLister)
	if !ok {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.sendCtx, listTimeout)
	defer cancel()
	models, err := ml.Models(ctx)
	if err != nil {
		return nil, false
	}
	return models, true
}

// listed returns the model list last read for model, for messages.
func (ev *evidence) listed(model string) []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return slices.Clone(ev.model(model).listed)
}

// endpointMissing checks once whether the upstream answers 404 to its model list too:
// then every path is unknown, and the base URL most likely lacks its /v1.
func (r *Run) endpointMissing() error {
	ev := &r.e.ev
	ev.endpointOnce.Do(func() {
		ml, ok := r.e.up.(ModelLister)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(r.sendCtx, listTimeout)
		defer cancel()
		_, err := ml.Models(ctx)
		var ue *UpstreamError
		if errors.As(err, &ue) && ue.StatusCode == http.StatusNotFound {
			base := strings.TrimRight(r.e.up.BaseURL(), "/")
			hint := ""
			if !strings.HasSuffix(base, "/v1") {
				hint = fmt.Sprintf(": does the base URL lack /v1 (%s/v1)?", base)
			}
			ev.endpointErr = fmt.Errorf("%w: %s answers 404 to the requests and to GET /models%s", ErrEndpointNotFound, base, hint)
		}
	})
	return ev.endpointErr
}

// verdictError builds the error that aborts a run on the evidence's verdict.
func (r *Run) verdictError(res attemptResult) error {
	base := r.e.up.BaseURL()
	switch res.kind {
	case attemptUnreachable:
		return fmt.Errorf("%w: no answer from %s for %v: %s", ErrUnreachable, base,
			r.e.ev.silentFor(r.e.now()).Round(time.Second), res.err.Message)
	case attemptNoEndpoint:
		return r.endpointMissing()
	}
	model := res.item.Estimate.Model
	list := ""
	if models := r.e.ev.listed(model); len(models) > 0 {
		slices.Sort(models)
		list = "; models available: " + strings.Join(models, ", ")
	}
	return fmt.Errorf("%w: %q is not served by %s%s", ErrUnknownModel, model, base, list)
}
