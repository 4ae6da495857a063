package sluice_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sim"
)

// simClient is an openai.Client on the simulator's in-process transport.
func simClient(t *testing.T, s *sim.Server) *openai.Client {
	t.Helper()
	up, err := openai.New(openai.Config{BaseURL: "http://sim.test/v1", HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// Two transient 404 model_not_found answers after the model has answered must cost two
// retries, not the job: every request ends with its own answer.
func TestTransientNotFoundIsRetried(t *testing.T) {
	s := sim.New(sim.Config{Seed: 1, Quirks: sim.Quirks{TransientNotFound: 2, NotFoundAfter: 50}})
	defer s.Close()
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 32
	if err := runJob(t, st, simClient(t, s), cfg, job, simRequests(3000)); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := s.Stats().NotFound; got != 2 {
		t.Fatalf("the simulator sent %d 404s, want 2", got)
	}
	checkOwnAnswers(t, st, job.ID, 3000)
}

// A model that answered and then is answered 404 for good is only given up once the
// upstream's model list confirms it is gone: the run aborts, resumable, and no request is
// failed.
func TestModelGoneAbortsOnlyWhenTheListSaysSo(t *testing.T) {
	var calls atomic.Int64
	up := &fakeUpstream{models: []string{"gpt-4o"}, do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		if calls.Add(1) <= 20 {
			return ok(req)
		}
		return fail(404, sluice.CodeModelNotFound, "The model `gpt-4o-mini` does not exist", 0)
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 1
	err := runJob(t, st, up, cfg, job, requests(200))
	if !errors.Is(err, sluice.ErrAborted) || !errors.Is(err, sluice.ErrUnknownModel) {
		t.Fatalf("run error = %v, want aborted on an unknown model", err)
	}
	if !strings.Contains(err.Error(), "models available: gpt-4o") {
		t.Errorf("message %q lacks the model list", err)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	// Ingest runs beside the requests: the abort may come before every line is in the
	// ledger, and a resume reads the rest.
	if stats.Done != 20 || stats.Failed != 0 || stats.Pending != stats.Total-20 {
		t.Errorf("stats %+v, want 20 done, none failed, the rest pending for a resume", stats)
	}
	if n := calls.Load(); n > 20+3 {
		t.Errorf("%d 404s before the abort, want at most 3", n-20)
	}
}

// A model that answered, then keeps answering 404 while the upstream still lists it, is
// never given up for the whole job: each request fails only on its own 404s, after its
// attempts.
func TestNotFoundWhileListedFailsOnlySentRequests(t *testing.T) {
	var calls atomic.Int64
	up := &fakeUpstream{models: []string{"gpt-4o-mini"}, do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		if calls.Add(1) <= 5 {
			return ok(req)
		}
		return fail(404, sluice.CodeModelNotFound, "The model `gpt-4o-mini` does not exist", 0)
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 4
	cfg.MaxAttempts = 2
	if err := runJob(t, st, up, cfg, job, requests(40)); err != nil {
		t.Fatalf("run: %v", err)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 40)
	for _, l := range lines {
		if n := up.attempts(*l.CustomID); l.Response == nil || l.Response.StatusCode == 404 && n != 2 {
			t.Errorf("%s: %+v after %d attempts, want its own answer, a 404 only after 2 attempts", *l.CustomID, l, n)
		}
	}
}

// With nothing ever answered, a refused connection aborts the run within UnreachableAfter
// with the cause, and every request stays pending.
func TestUnreachableUpstreamAbortsWithTheCause(t *testing.T) {
	ln, err := sim.Start(sim.Config{Quirks: sim.Quirks{Refuse: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	up, err := openai.New(openai.Config{BaseURL: ln.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer up.CloseIdleConnections()
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.UnreachableAfter = 50 * time.Millisecond
	cfg.MaxAttempts = 1000
	err = runJob(t, st, up, cfg, job, requests(100))
	if !errors.Is(err, sluice.ErrAborted) || !errors.Is(err, sluice.ErrUnreachable) {
		t.Fatalf("run error = %v, want aborted as unreachable", err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("message %q does not give the cause", err)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if stats.Pending != 100 {
		t.Errorf("stats %+v, want every request pending", stats)
	}
}

// After the upstream has answered, a refused connection is retried under the breaker
// with its cause in Progress, and the run ends once the upstream is back.
func TestUnreachableAfterAnswersShowsTheCause(t *testing.T) {
	var calls atomic.Int64
	var down atomic.Bool
	failing := make(chan struct{})
	back := make(chan struct{})
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		n := calls.Add(1)
		switch n {
		case 5:
			down.Store(true)
		case 30:
			close(failing)
			<-back
			down.Store(false)
		}
		if down.Load() {
			return nil, &sluice.UpstreamError{Code: sluice.CodeConnection, Message: "dial tcp 127.0.0.1:1: connect: connection refused"}
		}
		return ok(req)
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 1
	cfg.MaxAttempts = 1000
	cfg.UnreachableAfter = time.Nanosecond
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(context.Background(), job, requests(20))
	if err != nil {
		t.Fatal(err)
	}
	<-failing
	p := run.Progress()
	if !strings.Contains(p.LastError, "connection refused") || p.FailingSince.IsZero() || p.Faults < 20 {
		t.Errorf("progress while refused: last error %q, failing since %v, %d faults; want the cause", p.LastError, p.FailingSince, p.Faults)
	}
	close(back)
	if err := run.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if p := run.Progress(); !p.FailingSince.IsZero() {
		t.Errorf("failing since %v after recovery, want zero", p.FailingSince)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 20)
}

// A base URL without /v1 is answered 404 on every path: the run aborts with a hint.
func TestBaseURLWithoutV1Hints(t *testing.T) {
	s := sim.New(sim.Config{})
	defer s.Close()
	up, err := openai.New(openai.Config{BaseURL: "http://sim.test", HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	job := newJob(t, st)
	err = runJob(t, st, up, fastConfig(), job, simRequests(50))
	if !errors.Is(err, sluice.ErrEndpointNotFound) || !strings.Contains(err.Error(), "/v1") {
		t.Fatalf("run error = %v, want ErrEndpointNotFound with a hint at /v1", err)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if stats.Failed != 0 {
		t.Errorf("%d requests failed, want all pending for a rerun", stats.Failed)
	}
}

// A request whose last attempt got no HTTP answer is written with "response":null and an
// error, never with the status of an earlier attempt or a made-up one.
func TestDroppedAnswerHasNoStatus(t *testing.T) {
	s := sim.New(sim.Config{Seed: 5, Error5xx: 0.5, Quirks: sim.Quirks{Drop: 1}})
	defer s.Close()
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.MaxAttempts = 3
	cfg.BreakerFailures = 1000
	if err := runJob(t, st, simClient(t, s), cfg, job, simRequests(50)); err != nil {
		t.Fatalf("run: %v", err)
	}
	if s.Dropped() == 0 {
		t.Fatal("the simulator dropped nothing")
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 50)
	for _, l := range lines {
		if l.Response != nil && l.Response.StatusCode/100 != 5 || l.Response == nil && (l.Error == nil || l.Error.Code == "") {
			t.Errorf("line %+v, want a 5xx answer or response null with an error code", l)
		}
		if l.Response == nil && l.Error != nil && l.Error.Code != sluice.CodeConnection {
			t.Errorf("dropped answer recorded as %q, want %s", l.Error.Code, sluice.CodeConnection)
		}
	}
}

// Streams that never report usage are counted by sluice, so a token budget holds for
// them: --max-tokens 2000 lets no more than 2000 tokens through.
func TestTokenBudgetHoldsForStreamsWithoutUsage(t *testing.T) {
	s := sim.New(sim.Config{Seed: 2, Quirks: sim.Quirks{NoStreamUsage: true}})
	defer s.Close()
	src := simRequests(200)
	for i := range src.lines {
		l := &src.lines[i]
		l.Request.Body = json.RawMessage(strings.Replace(string(l.Request.Body), `"max_tokens":8,`, `"max_tokens":40,"stream":true,`, 1))
		l.Estimate.MaxOutputTokens = 40
	}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Budget = sluice.Budget{MaxTokens: 2000}
	err := runJob(t, st, simClient(t, s), cfg, job, src)
	if !errors.Is(err, sluice.ErrBudgetExhausted) {
		t.Fatalf("run error = %v, want the budget exhausted", err)
	}
	ss := s.Stats()
	if sent := ss.PromptTokens + ss.CompletionTokens; sent > 2000 || sent < 1000 {
		t.Errorf("the upstream used %d tokens under a budget of 2000", sent)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if stats.Usage.CompletionTokens != ss.CompletionTokens {
		t.Errorf("ledger has %d completion tokens, the upstream generated %d", stats.Usage.CompletionTokens, ss.CompletionTokens)
	}
}

// The abort for an unreachable upstream does not wait for the open breaker's cooldown.
func TestUnreachableAbortsWhileTheBreakerIsOpen(t *testing.T) {
	up := &fakeUpstream{do: func(context.Context, *sluice.Request, int) (*sluice.Response, error) {
		return nil, &sluice.UpstreamError{Code: sluice.CodeConnection, Message: "dial tcp: lookup nowhere.invalid: no such host"}
	}}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 16
	cfg.BreakerFailures = 3
	cfg.BreakerCooldown = time.Hour
	cfg.UnreachableAfter = time.Nanosecond
	err := runJob(t, st, up, cfg, job, requests(10))
	if !errors.Is(err, sluice.ErrUnreachable) || !strings.Contains(err.Error(), "no such host") {
		t.Fatalf("run error = %v, want ErrUnreachable with the cause", err)
	}
}

// In a job of two models where one is not served, each request for it is sent and fails
// by its own 404; none is failed unsent, and the other model's requests are done.
func TestUnservedModelAmongOthersFailsOnlySentRequests(t *testing.T) {
	s := sim.New(sim.Config{Models: []string{"gpt-4o-mini"}})
	defer s.Close()
	src := simRequests(40)
	for i := range src.lines {
		if i%2 == 1 {
			l := &src.lines[i]
			l.Request.Body = json.RawMessage(strings.Replace(string(l.Request.Body), "gpt-4o-mini", "gpt-missing", 1))
			l.Estimate.Model = "gpt-missing"
		}
	}
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 1 // the served model answers first
	if err := runJob(t, st, simClient(t, s), cfg, job, src); err != nil {
		t.Fatalf("run: %v", err)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 40)
	for i, l := range lines {
		want := 200
		if i%2 == 1 {
			want = 404
		}
		if l.Response == nil || l.Response.StatusCode != want {
			t.Errorf("line %d: %+v, want its own %d", i+1, l, want)
		}
	}
	if n := s.Stats().NotFound; n != 20 {
		t.Errorf("%d requests for the missing model sent, want all 20", n)
	}
}

// A 200 whose body is an error object (as OpenRouter passes on a provider's failure) is
// retried like the 502 it says it is, never written as the request's answer.
func TestErrorObjectIn200IsRetried(t *testing.T) {
	s := sim.New(sim.Config{Seed: 3, Quirks: sim.Quirks{ErrorIn200: 0.3}})
	defer s.Close()
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.MaxAttempts = 10
	cfg.BreakerFailures = 1000
	if err := runJob(t, st, simClient(t, s), cfg, job, simRequests(100)); err != nil {
		t.Fatalf("run: %v", err)
	}
	if s.ErrorsIn200() == 0 {
		t.Fatal("the simulator answered no error in a 200")
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, 100)
	for _, l := range lines {
		if l.Response == nil || l.Error != nil || !strings.Contains(string(l.Response.Body), `"choices"`) {
			t.Errorf("line for %s: %+v, want a completion", *l.CustomID, l)
		}
	}
	if ss := s.Stats(); ss.Requests != 100+s.ErrorsIn200() {
		t.Errorf("%d requests sent for 100 lines and %d errors in 200s", ss.Requests, s.ErrorsIn200())
	}
}
