package sluice_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

// longRequests feeds n requests whose bodies are each exactly size bytes long.
func longRequests(n, size int) *sliceSource {
	src := &sliceSource{}
	for i := range n {
		id := fmt.Sprintf("req-%04d", i+1)
		head := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + id
		tail := `"}]}`
		body := head + strings.Repeat("x", size-len(head)-len(tail)) + tail
		src.lines = append(src.lines, sluice.NewRequest{
			Line:     int64(i + 1),
			Request:  sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions, Body: json.RawMessage(body)},
			Estimate: sluice.Estimate{Model: "gpt-4o-mini", PromptTokens: 10, MaxOutputTokens: 5},
		})
	}
	return src
}

// bytesUpstream holds every request until the test lets it go, and records the most body
// bytes and requests it held at once.
type bytesUpstream struct {
	fakeUpstream
	arrived            chan string
	gate               chan struct{} // closed: every request may go
	bytes, count       atomic.Int64
	maxBytes, maxCount atomic.Int64
}

func newBytesUpstream() *bytesUpstream {
	up := &bytesUpstream{arrived: make(chan string, 1000), gate: make(chan struct{})}
	up.do = func(ctx context.Context, req *sluice.Request, _ int) (*sluice.Response, error) {
		n := up.bytes.Add(int64(len(req.Body)))
		c := up.count.Add(1)
		raise(&up.maxBytes, n)
		raise(&up.maxCount, c)
		defer up.bytes.Add(-int64(len(req.Body)))
		defer up.count.Add(-1)
		up.arrived <- req.CustomID
		select {
		case <-up.gate:
			return ok(req)
		case <-ctx.Done():
			return nil, &sluice.UpstreamError{Code: sluice.CodeTimeout, Err: ctx.Err()}
		}
	}
	return up
}

func raise(max *atomic.Int64, v int64) {
	for {
		m := max.Load()
		if v <= m || max.CompareAndSwap(m, v) {
			return
		}
	}
}

// noMoreArrivals fails the test if another request reaches the upstream within a short
// while: the absence of an event cannot be waited for, only given time to show.
func noMoreArrivals(t *testing.T, up *bytesUpstream, why string) {
	t.Helper()
	select {
	case id := <-up.arrived:
		t.Fatalf("%s reached the upstream: %s", id, why)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestBytesInFlightCapped(t *testing.T) {
	const size, n = 100_000, 12
	up := newBytesUpstream()
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 16
	cfg.MaxBytesInFlight = 3 * size
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(context.Background(), job, longRequests(n, size))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-up.arrived
	}
	noMoreArrivals(t, up, "3 bodies of 100 kB fill a cap of 300 kB")
	close(up.gate)
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := up.maxBytes.Load(); got > cfg.MaxBytesInFlight {
		t.Errorf("the upstream held %d body bytes at once, over the cap of %d", got, cfg.MaxBytesInFlight)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, n)
}

func TestBodyLargerThanCapGoesAlone(t *testing.T) {
	const size, n = 4000, 5
	up := newBytesUpstream()
	st := newStore(t)
	job := newJob(t, st)
	cfg := fastConfig()
	cfg.Concurrency = 4
	cfg.MaxBytesInFlight = 1000
	eng, err := sluice.New(st, up, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(context.Background(), job, longRequests(n, size))
	if err != nil {
		t.Fatal(err)
	}
	<-up.arrived
	noMoreArrivals(t, up, "a body over the cap goes alone")
	close(up.gate)
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := up.maxCount.Load(); got != 1 {
		t.Errorf("%d requests were in flight at once, want 1", got)
	}
	lines, _ := readOutput(t, st, job.ID)
	checkExactlyOnce(t, lines, n)
}

// A run stopped while it waits for bytes in flight, and whose attempts are cut off,
// gives every byte back: a later run on the same Engine can take the whole cap.
func TestStoppedRunFreesBytesInFlight(t *testing.T) {
	const size = 10_000
	for _, stop := range []struct {
		name string
		stop func(context.Context, *sluice.Run, context.CancelFunc) error
	}{
		{"StopAndCancel", func(ctx context.Context, r *sluice.Run, _ context.CancelFunc) error { return r.StopAndCancel(ctx) }},
		{"cancelled context", func(_ context.Context, _ *sluice.Run, cancel context.CancelFunc) error { cancel(); return nil }},
	} {
		t.Run(stop.name, func(t *testing.T) {
			up := newBytesUpstream()
			st := newStore(t)
			job := newJob(t, st)
			cfg := fastConfig()
			cfg.Concurrency = 8
			cfg.MaxBytesInFlight = 2 * size
			eng, err := sluice.New(st, up, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			run, err := eng.Start(ctx, job, longRequests(10, size))
			if err != nil {
				t.Fatal(err)
			}
			<-up.arrived
			<-up.arrived // the cap is full: the dispatcher waits for bytes
			if err := stop.stop(context.Background(), run, cancel); err != nil {
				t.Fatal(err)
			}
			if err := run.Wait(); !errors.Is(err, sluice.ErrInterrupted) {
				t.Fatalf("run error = %v, want ErrInterrupted", err)
			}

			// One body as large as the cap needs every byte of it.
			close(up.gate)
			job2 := &sluice.Job{ID: job.ID + "-2", State: sluice.JobRunning, Input: "test.jsonl", Options: json.RawMessage(`{}`)}
			if err := st.CreateJob(context.Background(), job2); err != nil {
				t.Fatal(err)
			}
			ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel2()
			run2, err := eng.Start(ctx2, job2, longRequests(1, 2*size))
			if err != nil {
				t.Fatal(err)
			}
			if err := run2.Wait(); err != nil {
				t.Fatalf("a body of the whole cap did not go after the stop: %v", err)
			}
		})
	}
}

func TestMaxBytesInFlightMustBePositive(t *testing.T) {
	_, err := sluice.New(newStore(t), &fakeUpstream{}, sluice.Config{MaxBytesInFlight: -1})
	if err == nil {
		t.Fatal("New accepted a negative MaxBytesInFlight")
	}
}
