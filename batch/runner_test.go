package batch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/openai"
)

func requests(prefix, model string, n int) []string {
	var lines []string
	for i := range n {
		lines = append(lines, request(fmt.Sprintf("%s%03d", prefix, i), model))
	}
	return lines
}

// A file of two models is split by model and by the line limit, every part runs once,
// and the output has every custom_id once, in input order.
func TestSplitsByModelAndLimit(t *testing.T) {
	p := startProvider(t, providerOpts{})
	var lines []string
	for i := range 250 { // interleaved: 150 of one model, 100 of the other
		model := "gpt-4o-mini"
		if i%5 >= 3 {
			model = "gpt-4o"
		}
		lines = append(lines, request(fmt.Sprintf("r%03d", i), model))
	}
	c := newClient(t, lines)
	r := newRunner(t, c.st, p.api, batch.Config{MaxLines: 100})
	prog := stepUntil(t, r, c.job, true, done)

	var got []string
	for _, part := range prog.Parts {
		got = append(got, fmt.Sprintf("%s:%d", part.Model, part.Requests))
		if part.Round != 1 || part.Status != sluice.BatchCompleted || !part.Collected || part.Usage.Total() == 0 {
			t.Errorf("part %d: round %d, status %s, collected %v, usage %+v", part.Number, part.Round, part.Status, part.Collected, part.Usage)
		}
	}
	if want := "gpt-4o-mini:100 gpt-4o-mini:50 gpt-4o:100"; strings.Join(got, " ") != want {
		t.Errorf("parts %s, want %s", strings.Join(got, " "), want)
	}
	for _, part := range prog.Parts { // collected parts' input files are deleted
		var ue *sluice.UpstreamError
		if _, err := p.api.FileContent(context.Background(), part.FileID); !errors.As(err, &ue) || ue.StatusCode != 404 {
			t.Errorf("part %d's input file %s after collecting: %v; want it deleted", part.Number, part.FileID, err)
		}
	}
	byID := c.checkOutput(t)
	for _, id := range c.ids {
		if n := p.up.count(id); n != 1 {
			t.Errorf("%s was answered %d times", id, n)
		}
		if o := byID[id]; o.Response == nil || o.Response.StatusCode != 200 {
			t.Errorf("%s: %+v", id, o)
		}
	}
	if c.job.State != sluice.JobCompleted {
		t.Errorf("job %s, want completed", c.job.State)
	}
	// The byte limit splits too: every line is ~150 bytes.
	c2 := newClient(t, requests("b", "gpt-4o-mini", 10))
	r2 := newRunner(t, c2.st, p.api, batch.Config{MaxBytes: 600})
	made, err := r2.Submit(context.Background(), c2.job)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range made {
		if part.Bytes > 600 || part.Requests < 1 {
			t.Errorf("part %d: %d requests, %d bytes; want at most 600 bytes", part.Number, part.Requests, part.Bytes)
		}
	}
	if len(made) < 3 {
		t.Errorf("10 lines of ~150 bytes in parts of 600 bytes made %d parts", len(made))
	}
}

// corruptingAPI changes the url of one line of one part's upload, so that the provider
// fails that part's validation naming the line.
type corruptingAPI struct {
	batch.API
	part, line int
	uploads    atomic.Int32
}

func (c *corruptingAPI) UploadFile(ctx context.Context, name string, r io.Reader) (*sluice.File, error) {
	n := int(c.uploads.Add(1))
	if n != c.part {
		return c.API.UploadFile(ctx, name, r)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines[c.line-1] = bytes.Replace(lines[c.line-1], []byte(`"url":"/v1/chat/completions"`), []byte(`"url":"/v1/embeddings"`), 1)
	return c.API.UploadFile(ctx, name, bytes.NewReader(bytes.Join(lines, nil)))
}

// A part that fails the provider's validation fails the line the provider names, and only
// its other lines are submitted again.
func TestPartFailingValidationResubmitsTheRest(t *testing.T) {
	p := startProvider(t, providerOpts{})
	c := newClient(t, requests("r", "gpt-4o-mini", 30))
	api := &corruptingAPI{API: p.api, part: 2, line: 3}
	r := newRunner(t, c.st, api, batch.Config{MaxLines: 10})
	prog := stepUntil(t, r, c.job, true, done)

	if len(prog.Parts) != 4 {
		t.Fatalf("parts: %s; want 3 in round 1 and 1 in round 2", describeParts(prog.Parts))
	}
	failed := prog.Parts[1]
	if failed.Status != sluice.BatchFailed || !strings.Contains(failed.Error, "line 3") {
		t.Errorf("part 2: status %s, error %q; want failed, naming line 3", failed.Status, failed.Error)
	}
	again := prog.Parts[3]
	if again.Round != 2 || again.Requests != 9 {
		t.Errorf("round 2 part: round %d, %d requests; want round 2 with the 9 other lines of part 2", again.Round, again.Requests)
	}
	byID := c.checkOutput(t)
	bad := byID["r012"] // part 2 is r010..r019; its line 3 is r012
	if bad.Error == nil || !strings.Contains(bad.Error.Message, "refused") {
		t.Errorf("r012: %+v; want an error with the provider's message", bad)
	}
	for _, id := range c.ids {
		want := 1
		if id == "r012" {
			want = 0
		}
		if n := p.up.count(id); n != want {
			t.Errorf("%s was answered %d times, want %d", id, n, want)
		}
	}
	if prog.Stats.Done != 29 || prog.Stats.Failed != 1 {
		t.Errorf("stats %+v; want 29 done, 1 failed", *prog.Stats)
	}
}

// A part that expires keeps what it finished; only the unfinished requests go into the
// next round.
func TestExpiredPartKeepsFinishedAndResubmitsUnfinished(t *testing.T) {
	p := startProvider(t, providerOpts{})
	lines := append(requests("fast-", "gpt-4o-mini", 12), requests("slow-", "gpt-4o-mini", 4)...)
	c := newClient(t, lines)
	r := newRunner(t, c.st, p.api, batch.Config{Window: "2s"})
	if _, err := r.Submit(context.Background(), c.job); err != nil {
		t.Fatal(err)
	}
	prog := stepUntil(t, r, c.job, false, func(p *batch.Progress) bool { return p.Active == 0 })
	first := prog.Parts[0]
	if first.Status != sluice.BatchExpired || first.Counts.Completed != 12 {
		t.Fatalf("part 1: status %s, counts %+v; want expired with the 12 fast ones completed", first.Status, first.Counts)
	}
	if prog.Stats.Done != 12 || prog.Stats.Pending != 4 {
		t.Fatalf("after round 1: %+v; want 12 done, 4 pending", *prog.Stats)
	}
	p.up.release()
	prog = stepUntil(t, r, c.job, true, done)
	if len(prog.Parts) != 2 || prog.Parts[1].Requests != 4 || prog.Parts[1].Round != 2 {
		t.Fatalf("parts: %s; want a round-2 part of the 4 slow ones", describeParts(prog.Parts))
	}
	c.checkOutput(t)
	for _, id := range c.ids {
		if n := p.up.count(id); n != 1 {
			t.Errorf("%s was answered %d times, want once", id, n)
		}
	}
}

// After --max-rounds, what is left is given up to the caller, pending.
func TestLeftoverAfterMaxRounds(t *testing.T) {
	clock := testutil.NewClock()
	p := startProvider(t, providerOpts{clock: clock})
	c := newClient(t, append(requests("fast-", "gpt-4o-mini", 3), requests("slow-", "gpt-4o-mini", 2)...))
	r := newRunner(t, c.st, p.api, batch.Config{Window: "1s", MaxRounds: 2})
	prog := stepUntil(t, r, c.job, true, func(prog *batch.Progress) bool {
		// The provider's batches expire when its clock passes their window: once the fast
		// requests are answered, never before (on the system clock, a loaded machine could
		// expire the first round's batch first).
		if p.up.count("fast-000")+p.up.count("fast-001")+p.up.count("fast-002") == 3 {
			clock.Advance(2 * time.Second)
		}
		return prog.Leftover > 0
	})
	if prog.Leftover != 2 || prog.Round != 2 || prog.Stats.Done != 3 || prog.Done {
		t.Fatalf("leftover %d after round %d, stats %+v", prog.Leftover, prog.Round, *prog.Stats)
	}
	// A further step submits nothing more.
	again, err := r.Step(context.Background(), c.job, true)
	if err != nil || len(again.Parts) != 2 {
		t.Fatalf("a step after the last round made parts: %v, %s", err, describeParts(again.Parts))
	}
}

// lossyAPI loses the answer to the first batch creation: the provider made the batch,
// but the runner never heard (a crash, or a connection cut, at the worst moment).
type lossyAPI struct {
	batch.API
	lost atomic.Bool
}

func (l *lossyAPI) CreateBatch(ctx context.Context, fileID, endpoint, window string, meta map[string]string) (*sluice.Batch, error) {
	b, err := l.API.CreateBatch(ctx, fileID, endpoint, window, meta)
	if err == nil && l.lost.CompareAndSwap(false, true) {
		return nil, errors.New("connection reset")
	}
	return b, err
}

// A watch that is killed and started again, in a new process with the store reopened,
// carries on: the batch whose creation it never heard of is found, not made twice.
func TestWatchRestartsWhereItStopped(t *testing.T) {
	p := startProvider(t, providerOpts{})
	ctx := context.Background()
	path := t.TempDir() + "/sluice.db"
	st, err := sqliteOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	c := ingestInto(t, st, requests("r", "gpt-4o-mini", 40))
	r := newRunner(t, st, &lossyAPI{API: p.api}, batch.Config{MaxLines: 20})
	if _, err := r.Step(ctx, c.job, true); err != nil {
		t.Fatal(err)
	}
	st.Close() // the watch dies

	st2, err := sqliteOpen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	job, err := st2.Job(ctx, c.job.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.st, c.job = st2, job
	r2 := newRunner(t, st2, p.api, batch.Config{MaxLines: 20, KeepFiles: true})
	prog := stepUntil(t, r2, job, true, done)
	for _, part := range prog.Parts {
		rc, err := p.api.FileContent(ctx, part.FileID)
		if err != nil {
			t.Errorf("part %d's input file with KeepFiles: %v", part.Number, err)
			continue
		}
		rc.Close()
	}
	if len(prog.Parts) != 2 {
		t.Fatalf("parts: %s", describeParts(prog.Parts))
	}
	batches, _, err := p.api.ListBatches(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 2 {
		t.Errorf("the provider has %d batches, want 2: a batch was created twice", len(batches))
	}
	c.checkOutput(t)
	for _, id := range c.ids {
		if n := p.up.count(id); n != 1 {
			t.Errorf("%s was answered %d times", id, n)
		}
	}
}

// Cancel keeps what finished; the rest is pending again, and nothing is resubmitted by a
// step that does not submit.
func TestCancelKeepsFinished(t *testing.T) {
	p := startProvider(t, providerOpts{})
	c := newClient(t, append(requests("fast-", "gpt-4o-mini", 6), requests("slow-", "gpt-4o-mini", 3)...))
	r := newRunner(t, c.st, p.api, batch.Config{})
	stepUntil(t, r, c.job, true, func(p *batch.Progress) bool {
		return len(p.Parts) == 1 && p.Parts[0].Counts.Completed == 6
	})
	if err := r.Cancel(context.Background(), c.job); err != nil {
		t.Fatal(err)
	}
	prog := stepUntil(t, r, c.job, false, func(p *batch.Progress) bool { return p.Active == 0 })
	if prog.Parts[0].Status != sluice.BatchCancelled || prog.Stats.Done != 6 || prog.Stats.Pending != 3 {
		t.Fatalf("after cancel: part %s, stats %+v; want cancelled, 6 done, 3 pending", prog.Parts[0].Status, *prog.Stats)
	}
	if len(prog.Parts) != 1 {
		t.Errorf("a step without submit made parts: %s", describeParts(prog.Parts))
	}
}

// A key the provider rejects stops the step with the provider's message, and the part
// stays to be started again.
func TestRejectedKeyStops(t *testing.T) {
	p := startProvider(t, providerOpts{})
	bad := p.apiWithKey(t, "sk-wrong-key-000000")
	c := newClient(t, requests("r", "gpt-4o-mini", 3))
	r := newRunner(t, c.st, bad, batch.Config{})
	_, err := r.Step(context.Background(), c.job, true)
	var ue *sluice.UpstreamError
	if !errors.As(err, &ue) || ue.StatusCode != 401 {
		t.Fatalf("step with a wrong key: %v; want the provider's 401", err)
	}
	if strings.Contains(err.Error(), "sk-wrong-key-000000") {
		t.Errorf("the key is in the error: %v", err)
	}
	parts, err := c.st.Parts(context.Background(), c.job.ID)
	if err != nil || len(parts) != 1 || parts[0].Status != "" || parts[0].FileID != "" {
		t.Fatalf("parts after a rejected key: %v %s", err, describeParts(parts))
	}
	// With the right key, the next step starts the same part.
	r = newRunner(t, c.st, p.api, batch.Config{})
	prog := stepUntil(t, r, c.job, true, done)
	if len(prog.Parts) != 1 {
		t.Errorf("parts: %s", describeParts(prog.Parts))
	}
}

func TestRateDuration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rate   batch.Rate
		n, tok int64
		want   time.Duration
	}{
		{"concurrency bound", batch.Rate{Concurrency: 10, Latency: time.Second}, 100, 0, 10 * time.Second},
		{"request limit bound", batch.Rate{Concurrency: 1000, Latency: time.Second, RPM: 60}, 100, 0, 100 * time.Second},
		{"token limit bound", batch.Rate{Concurrency: 1000, Latency: time.Second, TPM: 6000}, 100, 100_000, 1000 * time.Second},
		{"default latency", batch.Rate{Concurrency: 1}, 2, 0, 2 * batch.DefaultLatency},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rate.Duration(tc.n, tc.tok); got != tc.want {
				t.Errorf("Duration(%d, %d) = %s, want %s", tc.n, tc.tok, got, tc.want)
			}
		})
	}
	deadline := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	plan := batch.Plan{Deadline: deadline, Reserve: time.Minute, Rate: batch.Rate{Concurrency: 10, Latency: time.Second}}
	// 1000 requests: 100 s online, ×1.25 = 125 s, plus a minute in hand.
	if got, want := plan.SwitchAt(1000, 0), deadline.Add(-185*time.Second); !got.Equal(want) {
		t.Errorf("SwitchAt = %s, want %s", got, want)
	}
}

// fullAPI refuses the first batch for the enqueued-token limit, as OpenAI does when an
// account has too much queued.
type fullAPI struct {
	batch.API
	always  bool // refuse every batch
	refused atomic.Bool
}

const refusedID = "batch_refused_for_capacity"

func (f *fullAPI) CreateBatch(ctx context.Context, fileID, endpoint, window string, meta map[string]string) (*sluice.Batch, error) {
	if f.refused.CompareAndSwap(false, true) || f.always {
		return &sluice.Batch{ID: refusedID, InputFileID: fileID, Status: sluice.BatchValidating}, nil
	}
	return f.API.CreateBatch(ctx, fileID, endpoint, window, meta)
}

func (f *fullAPI) Batch(ctx context.Context, id string) (*sluice.Batch, error) {
	if id == refusedID {
		return &sluice.Batch{ID: id, Status: sluice.BatchFailed, Errors: &sluice.BatchErrors{Data: []sluice.BatchError{{
			Code: "token_limit_exceeded", Message: "Enqueued token limit reached for gpt-4o-mini in organization org-x. Limit: 90,000 enqueued tokens."}}}}, nil
	}
	return f.API.Batch(ctx, id)
}

// A part refused for the enqueued-token limit, while the other parts of its round were
// accepted, is submitted again without spending a round: with one round allowed, the job
// still ends done.
func TestCapacityRefusalSpendsNoRound(t *testing.T) {
	p := startProvider(t, providerOpts{})
	c := newClient(t, requests("r", "gpt-4o-mini", 20))
	r := newRunner(t, c.st, &fullAPI{API: p.api}, batch.Config{MaxLines: 10, MaxRounds: 1})
	prog := stepUntil(t, r, c.job, true, func(p *batch.Progress) bool { return p.Done || p.Leftover > 0 })
	if !prog.Done || len(prog.Parts) != 3 {
		t.Fatalf("done %v, leftover %d, parts %s; want done with a third part resubmitting the refused one", prog.Done, prog.Leftover, describeParts(prog.Parts))
	}
	if !strings.Contains(prog.Parts[0].Error, "Enqueued token limit") {
		t.Errorf("part 1 error %q; want the provider's message", prog.Parts[0].Error)
	}
	c.checkOutput(t)
	for _, id := range c.ids {
		if n := p.up.count(id); n != 1 {
			t.Errorf("%s answered %d times", id, n)
		}
	}
}

// When every part of a round is refused for capacity, the round is spent all the same:
// a job that can never fit ends with its requests left over, not in an endless loop.
func TestCapacityRefusalOfEveryPartSpendsRounds(t *testing.T) {
	p := startProvider(t, providerOpts{})
	c := newClient(t, requests("r", "gpt-4o-mini", 5))
	r := newRunner(t, c.st, &fullAPI{API: p.api, always: true}, batch.Config{MaxRounds: 2})
	prog := stepUntil(t, r, c.job, true, func(p *batch.Progress) bool { return p.Done || p.Leftover > 0 })
	if prog.Leftover != 5 || len(prog.Parts) != 2 {
		t.Fatalf("leftover %d, parts %s; want 5 left after 2 refused rounds", prog.Leftover, describeParts(prog.Parts))
	}
}

// An upload the provider refuses is shown with the provider's own message, and its
// requests are left over once their rounds are spent, never lost.
func TestRefusedUploadShowsProviderMessage(t *testing.T) {
	p := startProvider(t, providerOpts{maxBytes: 1000})
	c := newClient(t, append(requests("a", "gpt-4o-mini", 3), requests("b", "gpt-4o", 20)...))
	r := newRunner(t, c.st, p.api, batch.Config{MaxRounds: 2})
	prog := stepUntil(t, r, c.job, true, func(p *batch.Progress) bool { return p.Leftover > 0 })
	var refused, done int
	for _, part := range prog.Parts {
		switch {
		case part.Status == sluice.BatchFailed && strings.Contains(part.Error, "upload refused: The file is larger than the 1000 bytes allowed."):
			refused++
		case part.Status == sluice.BatchCompleted:
			done++
		default:
			t.Errorf("part %d: %s %q", part.Number, part.Status, part.Error)
		}
	}
	if refused != 2 || done != 1 || prog.Leftover != 20 || prog.Stats.Done != 3 {
		t.Fatalf("%d refused, %d done, leftover %d, stats %+v; want the 20-request part refused twice, the other done", refused, done, prog.Leftover, *prog.Stats)
	}
}

// A watch polls often at first, backs off towards Poll while nothing changes, and polls
// often again once something does.
func TestWatchBacksOffAndResets(t *testing.T) {
	p := startProvider(t, providerOpts{})
	c := newClient(t, requests("slow-w", "gpt-4o-mini", 3))
	r := newRunner(t, c.st, p.api, batch.Config{})
	var waits []time.Duration
	batch.SetSleep(r, func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if len(waits) == 12 {
			p.up.release() // the requests can end: the batch completes
		}
		return ctx.Err()
	})
	prog, err := r.Watch(context.Background(), c.job, batch.WatchOptions{Submit: true, MinPoll: time.Millisecond, Poll: 8 * time.Millisecond})
	if err != nil || !prog.Done {
		t.Fatalf("watch: %v, %+v", err, prog)
	}
	if len(waits) < 12 || waits[0] != time.Millisecond {
		t.Fatalf("waits %v: want at least 12, the first 1ms", waits)
	}
	reached := false
	for i := 1; i < len(waits); i++ {
		if w, prev := waits[i], waits[i-1]; w != time.Millisecond && w != min(2*prev, 8*time.Millisecond) {
			t.Fatalf("wait %d is %v after %v: want 1ms or double, at most 8ms (%v)", i, w, prev, waits)
		}
		reached = reached || waits[i] == 8*time.Millisecond
	}
	if !reached || !slices.Contains(waits[12:], time.Millisecond) {
		t.Errorf("waits %v: want the backoff to reach 8ms while held, and a 1ms wait after the release", waits)
	}
}

// A watch whose provider cannot be reached gives up with ErrUnreachable, keeping the job.
func TestWatchGivesUpOnUnreachableProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	api, err := openai.New(openai.Config{BaseURL: "http://" + addr + "/v1", APIKey: serveKey})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, requests("u", "gpt-4o-mini", 3))
	r := newRunner(t, c.st, api, batch.Config{})
	prog, err := r.Watch(context.Background(), c.job, batch.WatchOptions{Submit: true, MinPoll: time.Millisecond, Poll: 2 * time.Millisecond, GiveUp: 20 * time.Millisecond})
	if !errors.Is(err, batch.ErrUnreachable) || prog == nil || prog.Unreachable == nil {
		t.Fatalf("watch of a dead provider: %v; want ErrUnreachable with its progress", err)
	}
	if s := prog.Stats; s.Total != 3 || s.Done != 0 || s.Failed != 0 || len(prog.Parts) != 1 || prog.Parts[0].FileID != "" {
		t.Errorf("after giving up: stats %+v, parts %s; want the 3 requests kept in one unstarted part", *s, describeParts(prog.Parts))
	}
}
