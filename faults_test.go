package sluice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sim"
)

// simRequests makes n chat requests whose prompt names the request, so that the
// simulator's echo can be matched to it.
func simRequests(n int) *sliceSource {
	src := &sliceSource{}
	for i := range n {
		id := fmt.Sprintf("req-%04d", i+1)
		src.lines = append(src.lines, sluice.NewRequest{
			Line: int64(i + 1),
			Request: sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions,
				Body: json.RawMessage(`{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"ask ` + id + `"}]}`)},
			Estimate: sluice.Estimate{Model: "gpt-4o-mini", PromptTokens: 12, MaxOutputTokens: 8},
		})
	}
	return src
}

// checkOwnAnswers checks the output has every request once, in order, each with a 200
// that carries its own answer.
func checkOwnAnswers(t *testing.T, st sluice.Store, jobID string, n int) {
	t.Helper()
	lines, errs := readOutput(t, st, jobID)
	checkExactlyOnce(t, lines, n)
	for _, l := range lines {
		if l.Response == nil || l.Response.StatusCode != 200 || !strings.Contains(string(l.Response.Body), "ask "+*l.CustomID) {
			t.Fatalf("line for %s is not its own 200 answer: %+v", *l.CustomID, l)
		}
	}
	if len(errs) != 0 {
		t.Errorf("%d error lines, want none", len(errs))
	}
}

// TestFaultMix runs requests against the simulator with the fault mix of the engine's
// target (5% 500s, 2% connection resets, 1% hangs, 1% truncated bodies): every request
// ends in the output exactly once, with its own answer.
func TestFaultMix(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 2_000
	}
	s := sim.New(sim.Config{Seed: 42, Error5xx: 0.05, Reset: 0.02, Hang: 0.01, Truncate: 0.01})
	defer s.Close()
	up, err := openai.New(openai.Config{BaseURL: "http://sim.test/v1", HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	st, job := runFaultMix(t, up, 128, n)
	ss := s.Stats()
	if ss.Errors5xx == 0 || ss.Resets == 0 || ss.Hangs == 0 || ss.Truncated == 0 {
		t.Fatalf("the simulator injected no faults of some kind: %+v", ss)
	}
	stats, _ := st.Stats(context.Background(), job.ID)
	if stats.Retries < ss.Errors5xx+ss.Resets+ss.Hangs+ss.Truncated {
		t.Errorf("%d retries for %d injected faults", stats.Retries, ss.Errors5xx+ss.Resets+ss.Hangs+ss.Truncated)
	}
}

// TestFaultMixOverSockets runs the same mix through a real listener, so that resets are
// real TCP resets and truncated bodies arrive over the wire.
func TestFaultMixOverSockets(t *testing.T) {
	_, up := simOverSockets(t, sim.Config{Seed: 3, Error5xx: 0.05, Reset: 0.02, Hang: 0.01, Truncate: 0.01}, 64)
	runFaultMix(t, up, 64, 1500)
}

// simOverSockets serves a simulator of cfg on loopback and returns it with a client of
// it as sluice run makes one for concurrency.
func simOverSockets(t *testing.T, cfg sim.Config, concurrency int) (*sim.Listener, *openai.Client) {
	t.Helper()
	ln, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.Close)
	hc := &http.Client{Transport: openai.NewTransportFor(ln.URL, concurrency)}
	t.Cleanup(hc.CloseIdleConnections)
	up, err := openai.New(openai.Config{BaseURL: ln.URL, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return ln, up
}

// runFaultMix runs n requests through up, with hung requests cut off and retried and the
// breaker out of the way, and checks every request ends once with its own answer.
func runFaultMix(t *testing.T, up sluice.Upstream, concurrency, n int) (sluice.Store, *sluice.Job) {
	t.Helper()
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = concurrency
	cfg.MaxAttempts = 10
	cfg.Timeout = 300 * time.Millisecond
	cfg.BreakerFailures = 1000
	if err := runJob(t, st, up, cfg, job, simRequests(n)); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkOwnAnswers(t, st, job.ID, n)
	return st, job
}

// TestServerClosesAfterAnswer runs requests one at a time against a server that closes
// every keep-alive connection right after its answer: the engine's connections find it
// out before sending, and the run costs about no retries (each reuse of the closed
// connection was a counted retry).
func TestServerClosesAfterAnswer(t *testing.T) {
	ln, up := simOverSockets(t, sim.Config{Seed: 1, Quirks: sim.Quirks{CloseAfterAnswer: 1}}, 1)
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 1
	cfg.MaxAttempts = 10
	cfg.BreakerFailures = 1000
	const n = 40
	if err := runJob(t, st, up, cfg, job, simRequests(n)); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkOwnAnswers(t, st, job.ID, n)
	if ln.ClosedAfterAnswer() == 0 {
		t.Fatal("the simulator closed no connection")
	}
	stats, err := st.Stats(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d retries for %d requests", stats.Retries, n)
	// The first reuse cannot know yet; a close racing a send may cost a few more.
	if stats.Retries > n/4 {
		t.Errorf("%d retries for %d requests to a server that closes after each answer", stats.Retries, n)
	}
}
