package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/timeline"
)

// recorderCloseTimeout bounds the last write of a run's timeline.
const recorderCloseTimeout = 5 * time.Second

// withRecorder returns obs joined with a timeline Recorder writing to st, started, and
// the function that writes what is left and stops it; obs alone when st keeps no
// timelines. A timeline that cannot be written is a warning, never a failed run.
func withRecorder(e *env, st sluice.Store, obs sluice.Observer) (sluice.Observer, func()) {
	ts, ok := st.(sluice.TimelineStore)
	if !ok {
		return obs, func() {}
	}
	rec := timeline.New(ts, timeline.Config{})
	rec.Start()
	return timeline.Join(obs, rec), func() {
		ctx, cancel := context.WithTimeout(context.Background(), recorderCloseTimeout)
		defer cancel()
		if err := rec.Close(ctx); err != nil {
			fmt.Fprintln(e.stderr, "warning: timeline:", err)
		}
	}
}
