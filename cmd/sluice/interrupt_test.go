package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/mock"
	"github.com/sluice-llm/sluice/sqlite"
)

// syncBuffer is a bytes.Buffer safe for the interrupt goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInterrupt drives the one signal handler with a fake signal channel: the first
// Ctrl-C drains the runs going (requests in flight finish), the second or the end of the
// grace cuts them off (they go back to pending), and with no run going the first stops
// at once.
func TestInterrupt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		signals  int           // Ctrl-Cs sent after the window is full
		grace    time.Duration // before the cut
		release  bool          // the upstream answers after the first Ctrl-C
		wantDone int64
		wantCut  bool
	}{
		{name: "first drains", signals: 1, grace: time.Hour, release: true, wantDone: 4},
		{name: "second cuts off", signals: 2, grace: time.Hour, wantDone: 0, wantCut: true},
		{name: "grace over cuts off", signals: 1, grace: time.Millisecond, wantDone: 0, wantCut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sluice.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			job := &sluice.Job{ID: "job_interrupt", State: sluice.JobRunning, Options: json.RawMessage(`{}`)}
			if err := st.CreateJob(context.Background(), job); err != nil {
				t.Fatal(err)
			}
			release, started := make(chan struct{}), make(chan string, 20)
			up := &mock.Upstream{DoFunc: func(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
				started <- req.CustomID
				select {
				case <-release:
					return &sluice.Response{StatusCode: 200, Body: json.RawMessage(`{}`)}, nil
				case <-ctx.Done():
					return nil, &sluice.UpstreamError{Code: sluice.CodeTimeout, Err: ctx.Err()}
				}
			}}
			eng, err := sluice.New(st, up, sluice.Config{Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			sigs := make(chan os.Signal, 2)
			var stderr syncBuffer
			e := &env{stderr: &stderr, interrupts: sigs}
			in := newInterrupt(context.Background(), e, tc.grace, drainRuns, "")
			defer in.stop()
			run, err := eng.Start(in.ctx, job, interruptSource(20))
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				<-started
			}
			sigs <- os.Interrupt
			<-in.draining
			if tc.signals == 2 {
				sigs <- os.Interrupt
			}
			if tc.release {
				close(release)
			}
			if err := run.Wait(); !errors.Is(err, sluice.ErrInterrupted) {
				t.Fatalf("Wait = %v, want ErrInterrupted", err)
			}
			if !tc.release {
				close(release)
			}
			if in.cutOff() != tc.wantCut {
				t.Errorf("cut off %v, want %v", in.cutOff(), tc.wantCut)
			}
			stats, err := st.Stats(context.Background(), job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Done != tc.wantDone || stats.Pending != 20-tc.wantDone || stats.Attempts != tc.wantDone {
				t.Errorf("done %d pending %d attempts %d, want %d, %d, %d", stats.Done, stats.Pending, stats.Attempts,
					tc.wantDone, 20-tc.wantDone, tc.wantDone)
			}
			if !strings.Contains(stderr.String(), "Ctrl-C again to cut them off") {
				t.Errorf("stderr %q does not say how to cut off", stderr.String())
			}
		})
	}
}

// TestInterruptWithNothingToDrainStopsAtOnce: a command waiting on something else (a
// batch watch polling) stops at the first Ctrl-C.
func TestInterruptWithNothingToDrainStopsAtOnce(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	var stderr syncBuffer
	in := newInterrupt(context.Background(), &env{stderr: &stderr, interrupts: sigs}, time.Hour, drainRuns, "")
	defer in.stop()
	sigs <- os.Interrupt
	<-in.ctx.Done()
	if !in.cutOff() {
		t.Errorf("cause %v, want errCutOff", context.Cause(in.ctx))
	}
}

func interruptSource(n int) sluice.Source {
	src := &lineSource{}
	for i := range n {
		id := fmt.Sprintf("req-%d", i+1)
		src.lines = append(src.lines, sluice.NewRequest{Line: int64(i + 1),
			Request:  sluice.Request{CustomID: id, Method: "POST", URL: sluice.EndpointChatCompletions, Body: json.RawMessage(`{"model":"m"}`)},
			Estimate: sluice.Estimate{Model: "m", PromptTokens: 1, MaxOutputTokens: 1}})
	}
	return src
}

type lineSource struct {
	lines []sluice.NewRequest
	i     int
}

func (s *lineSource) Next() (sluice.NewRequest, error) {
	if s.i >= len(s.lines) {
		return sluice.NewRequest{}, io.EOF
	}
	s.i++
	return s.lines[s.i-1], nil
}
