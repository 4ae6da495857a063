package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
)

const (
	// DefaultMinPoll is the first wait of a watch, and its wait after anything changed.
	DefaultMinPoll = time.Second
	// DefaultGiveUp is how long a watch goes on when no call reaches the provider.
	DefaultGiveUp = 2 * time.Minute
)

// ErrUnreachable means no call reached the provider for longer than a watch's GiveUp:
// every one failed before an HTTP answer (connection refused, unknown host, timeouts).
var ErrUnreachable = errors.New("the provider cannot be reached")

// WatchOptions are a watch's settings. The zero value watches without submitting, with
// the default waits.
type WatchOptions struct {
	// Submit lets the watch start parts and submit new rounds (Step's submit).
	Submit bool
	// Poll is the longest wait between two steps (DefaultPoll). Waits start at MinPoll,
	// double while nothing changes and fall back to MinPoll when something does.
	Poll time.Duration
	// MinPoll is the shortest wait (DefaultMinPoll, or Poll if that is shorter).
	MinPoll time.Duration
	// GiveUp ends the watch with ErrUnreachable once no call has reached the provider
	// for this long (DefaultGiveUp). A provider that answers, even with errors, resets it.
	GiveUp time.Duration
	// OnStep, if set, is called with the progress after every step.
	OnStep func(*Progress)
}

func (o WatchOptions) withDefaults() WatchOptions {
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.MinPoll <= 0 {
		o.MinPoll = DefaultMinPoll
	}
	o.MinPoll = min(o.MinPoll, o.Poll)
	if o.GiveUp <= 0 {
		o.GiveUp = DefaultGiveUp
	}
	return o
}

// Watch steps the job until every request is final, requests are left over after the
// last round, nothing is running when it may not submit, or ctx ends (ctx's error). It
// polls often at first and after each change, backing off towards opts.Poll while
// nothing changes. It returns ErrUnreachable, with the last progress, once no call has
// reached the provider for opts.GiveUp.
func (r *Runner) Watch(ctx context.Context, job *sluice.Job, opts WatchOptions) (*Progress, error) {
	opts = opts.withDefaults()
	wait := opts.MinPoll
	last := ""
	var unreachableSince time.Time
	for {
		prog, err := r.Step(ctx, job, opts.Submit)
		if err != nil {
			return nil, err
		}
		if opts.OnStep != nil {
			opts.OnStep(prog)
		}
		if prog.Done || prog.Leftover > 0 || (!opts.Submit && prog.Active == 0) {
			return prog, nil
		}
		if prog.Unreachable == nil {
			unreachableSince = time.Time{}
		} else if unreachableSince.IsZero() {
			unreachableSince = time.Now()
		} else if since := time.Since(unreachableSince); since >= opts.GiveUp {
			return prog, fmt.Errorf("%w for %s: %w", ErrUnreachable, since.Round(time.Second), prog.Unreachable)
		}
		if s := prog.signature(); s != last {
			last, wait = s, opts.MinPoll
		} else {
			wait = min(2*wait, opts.Poll)
		}
		pause := sleep
		if r.sleep != nil {
			pause = r.sleep
		}
		if err := pause(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// signature sums up what a watch counts as a change: the parts, their states and counts.
func (p *Progress) signature() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d/%d|", p.Round, p.Active, p.Leftover)
	if p.Stats != nil {
		fmt.Fprintf(&b, "%d/%d/%d|", p.Stats.Done, p.Stats.Failed, p.Stats.Pending)
	}
	for _, pt := range p.Parts {
		fmt.Fprintf(&b, "%d:%s:%s:%t:%d:%d;", pt.Number, pt.BatchID, pt.Status, pt.Collected, pt.Counts.Completed, pt.Counts.Failed)
	}
	return b.String()
}

// unreachable reports whether err failed before any HTTP answer (an upstream error with
// no status, or a bare transport error), rather than with an answer, a ledger failure or
// a cancel.
func unreachable(err error) bool {
	if err == nil || errors.Is(err, errLedger) || errors.Is(err, context.Canceled) {
		return false
	}
	if ue := (*sluice.UpstreamError)(nil); errors.As(err, &ue) {
		return ue.StatusCode == 0
	}
	return true
}
