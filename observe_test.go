package sluice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
)

// observed records what an Observer was told.
type observed struct {
	mu   sync.Mutex
	seen []sluice.Attempt
}

func (o *observed) ObserveAttempt(a *sluice.Attempt) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, *a)
}

func TestObserverSeesEveryAttempt(t *testing.T) {
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, attempt int) (*sluice.Response, error) {
		switch {
		case req.CustomID == "req-0001" && attempt == 1:
			return fail(429, "rate_limit_exceeded", "slow down", time.Millisecond)
		case req.CustomID == "req-0002" && attempt == 1:
			return fail(503, "", "unavailable", 0)
		case req.CustomID == "req-0003":
			return fail(400, "invalid_request_error", "bad messages", 0)
		}
		return ok(req)
	}}
	st := newStore(t)
	job := newJob(t, st)
	obs := &observed{}
	cfg := fastConfig()
	cfg.Observer = obs
	cfg.Cost = func(string, sluice.Usage) float64 { return 0.5 }
	if err := runJob(t, st, up, cfg, job, requests(4)); err != nil {
		t.Fatalf("run: %v", err)
	}
	kinds := map[string][]sluice.AttemptKind{}
	var cost float64
	for _, a := range obs.seen {
		if a.JobID != job.ID || a.Model != "gpt-4o-mini" || a.Finished.IsZero() {
			t.Errorf("attempt %+v: want job %s, model gpt-4o-mini and a finish time", a, job.ID)
		}
		kinds[a.CustomID] = append(kinds[a.CustomID], a.Kind)
		cost += a.Cost
	}
	want := map[string][]sluice.AttemptKind{
		"req-0001": {sluice.AttemptThrottled, sluice.AttemptOK},
		"req-0002": {sluice.AttemptRetry, sluice.AttemptOK},
		"req-0003": {sluice.AttemptFailed},
		"req-0004": {sluice.AttemptOK},
	}
	for id, w := range want {
		got := kinds[id]
		if len(got) != len(w) {
			t.Errorf("%s: observed %v, want %v", id, got, w)
			continue
		}
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("%s: observed %v, want %v", id, got, w)
			}
		}
	}
	if cost != 1.5 { // three answers with usage, at 0.5 each
		t.Errorf("observed cost %.2f, want 1.50", cost)
	}
	for _, a := range obs.seen {
		if a.CustomID == "req-0003" && (a.StatusCode != 400 || a.ErrorCode != "invalid_request_error") {
			t.Errorf("failed attempt = status %d code %q, want 400 invalid_request_error", a.StatusCode, a.ErrorCode)
		}
	}
}

// TestAttemptsAreLogged checks that every attempt is logged at debug with the ids that
// find it again, and a request that failed for good at info.
func TestAttemptsAreLogged(t *testing.T) {
	up := &fakeUpstream{do: func(_ context.Context, req *sluice.Request, attempt int) (*sluice.Response, error) {
		if req.CustomID == "req-0002" {
			return fail(400, "invalid_request_error", "bad messages", 0)
		}
		return ok(req)
	}}
	st := newStore(t)
	job := newJob(t, st)
	var buf bytes.Buffer
	cfg := fastConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := runJob(t, st, up, cfg, job, requests(3)); err != nil {
		t.Fatalf("run: %v", err)
	}
	type record struct {
		Level, Msg, Job, Kind, Code string
		CustomID                    string `json:"custom_id"`
		RequestID                   string `json:"request_id"`
		Line, Status                int
	}
	got := map[string]record{}
	for line := range strings.Lines(buf.String()) {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		got[r.CustomID] = r
	}
	want := map[string]record{
		"req-0001": {Level: "DEBUG", Msg: "attempt", Job: job.ID, Kind: "ok", CustomID: "req-0001", RequestID: "req_req-0001", Line: 1, Status: 200},
		"req-0002": {Level: "INFO", Msg: "request failed", Job: job.ID, Kind: "failed", Code: "invalid_request_error", CustomID: "req-0002", Line: 2, Status: 400},
		"req-0003": {Level: "DEBUG", Msg: "attempt", Job: job.ID, Kind: "ok", CustomID: "req-0003", RequestID: "req_req-0003", Line: 3, Status: 200},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log records (-want +got):\n%s", diff)
	}
}
