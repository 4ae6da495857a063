package batch

import (
	"context"
	"time"
)

// SetSleep replaces the wait between a watch's steps.
func SetSleep(r *Runner, f func(context.Context, time.Duration) error) { r.sleep = f }
