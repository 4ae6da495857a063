package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-llm/sluice"
)

// Hybrid defaults.
const (
	// DefaultLatency is the latency of one online request assumed when none is known:
	// long for a chat answer, so that the switch online comes early rather than late.
	DefaultLatency = 5 * time.Second
	// DefaultReserve is the time kept in hand beyond the estimated online run, for the
	// provider to cancel the batch and for the estimate to be wrong.
	DefaultReserve = 10 * time.Minute
	// DefaultPoll is how often a batch's status is polled.
	DefaultPoll = 30 * time.Second
	// safety stretches the estimated online run: rate limits are rarely met exactly.
	safety = 1.25
)

// Rate is how fast an upstream runs requests online.
type Rate struct {
	// RPM and TPM are the account's limits per minute; 0 means unknown.
	RPM, TPM float64
	// Concurrency caps the requests in flight.
	Concurrency int
	// Latency is one request's typical latency (DefaultLatency when 0).
	Latency time.Duration
}

// Duration estimates how long n requests of tokens tokens in all take online: the
// longest of what the concurrency, the request limit and the token limit allow.
func (r Rate) Duration(n, tokens int64) time.Duration {
	lat := r.Latency
	if lat <= 0 {
		lat = DefaultLatency
	}
	secs := float64(n) * lat.Seconds() / float64(max(1, r.Concurrency))
	if r.RPM > 0 {
		secs = max(secs, float64(n)/r.RPM*60)
	}
	if r.TPM > 0 {
		secs = max(secs, float64(tokens)/r.TPM*60)
	}
	return time.Duration(secs * float64(time.Second))
}

// Learned is r with what an earlier run learned of the upstream (its limits from its
// headers, its median latency) where r leaves them unknown, and DefaultLatency when no
// latency is known at all; obs is nil when no run learned anything. Source says, for the
// user, what the rate is and where it comes from.
func (r Rate) Learned(obs *sluice.RateObservation) (rate Rate, source string) {
	rate = r
	var from []string
	if rate.RPM > 0 || rate.TPM > 0 || rate.Latency > 0 {
		from = append(from, "the flags given")
	}
	if obs != nil {
		learned := false
		if rate.RPM == 0 && obs.RPM > 0 {
			rate.RPM, learned = obs.RPM, true
		}
		if rate.TPM == 0 && obs.TPM > 0 {
			rate.TPM, learned = obs.TPM, true
		}
		if rate.Latency == 0 && obs.Latency > 0 {
			rate.Latency, learned = obs.Latency, true
		}
		if learned {
			from = append(from, "a run of "+obs.At.Local().Format(time.DateTime))
		}
	}
	if rate.Latency == 0 {
		rate.Latency = DefaultLatency
		from = append(from, "an assumed latency of "+DefaultLatency.String())
	}
	source = fmt.Sprintf("%d in flight", rate.Concurrency)
	if rate.RPM > 0 {
		source += fmt.Sprintf(", %.0f RPM", rate.RPM)
	}
	if rate.TPM > 0 {
		source += fmt.Sprintf(", %.0f TPM", rate.TPM)
	}
	source += fmt.Sprintf(", %s per request, from %s", rate.Latency.Round(time.Millisecond), strings.Join(from, " and "))
	return rate, source
}

// Plan is when a hybrid run must finish and how fast it can run online.
type Plan struct {
	Deadline time.Time
	Rate     Rate
	// Reserve is kept in hand beyond the estimated online run (DefaultReserve).
	Reserve time.Duration
	// Poll is how often the batches are polled (DefaultPoll).
	Poll time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SwitchAt is the last moment at which n requests of tokens tokens can still start
// online and finish by the deadline.
func (p Plan) SwitchAt(n, tokens int64) time.Time {
	need := time.Duration(float64(p.Rate.Duration(n, tokens))*safety) + p.reserve()
	return p.Deadline.Add(-need)
}

func (p Plan) reserve() time.Duration {
	if p.Reserve > 0 {
		return p.Reserve
	}
	return DefaultReserve
}

func (p Plan) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// HybridEvent tells a hybrid run's caller what happened: each step's progress, and the
// moment it went online.
type HybridEvent struct {
	Progress *Progress
	// Switched is set on the event of the step that sent the rest online, with Why.
	Switched bool
	Why      string
}

// RunHybrid runs the job for the Batch API's prices and meets the deadline: it submits
// the job's requests as batches and polls them; when the time left is no longer enough
// to run what is unfinished online (or no round is left), it cancels the batches, keeps
// what they finished, and runs the rest through online, a run of the online engine that
// ends when nothing is pending (sluice.StopWhenIdle). It returns when every request is
// final, or with ctx's error. on, if not nil, is called after every step.
func (r *Runner) RunHybrid(ctx context.Context, job *sluice.Job, plan Plan, online func(context.Context) error, on func(HybridEvent)) error {
	poll := plan.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	tokens, err := r.meanTokens(ctx, job)
	if err != nil {
		return err
	}
	switched := false
	if prog, err := r.progress(ctx, job); err != nil {
		return err
	} else if len(prog.Parts) == 0 && !prog.Done { // nothing submitted yet: is there time?
		left := prog.Stats.Pending
		if !plan.now().Before(plan.SwitchAt(left, int64(float64(left)*tokens))) {
			switched = true
			emit(on, HybridEvent{Progress: prog, Switched: true,
				Why: fmt.Sprintf("running %d requests online may take until the deadline: no batch is submitted", left)})
		}
	}
	for {
		prog, err := r.Step(ctx, job, !switched)
		if errors.Is(err, ErrNoBatchAPI) && !switched {
			// Online is the only plan: give the parts' requests back and run them.
			if err := r.Cancel(ctx, job); err != nil {
				return err
			}
			switched = true
			if prog, err = r.Step(ctx, job, false); err != nil {
				return err
			}
			emit(on, HybridEvent{Progress: prog, Switched: true, Why: "the upstream has no Batch API"})
			continue
		}
		if err != nil {
			return err
		}
		ev := HybridEvent{Progress: prog}
		if prog.Done {
			emit(on, ev)
			return nil
		}
		if !switched {
			left := prog.unfinished()
			switch at := plan.SwitchAt(left, int64(float64(left)*tokens)); {
			case prog.Leftover > 0:
				ev.Why = fmt.Sprintf("%d requests are left after %d rounds", prog.Leftover, prog.Round)
			case !plan.now().Before(at):
				ev.Why = fmt.Sprintf("%d requests are unfinished and running them online takes until the deadline", left)
			}
			if ev.Why != "" {
				switched, ev.Switched = true, true
				if err := r.Cancel(ctx, job); err != nil {
					ev.Progress.Warnings = append(ev.Progress.Warnings, err.Error())
				}
			}
		}
		emit(on, ev)
		if switched && prog.Stats.Pending > 0 || ev.Switched {
			err := online(ctx)
			r.changed(job.ID)
			if err != nil {
				return err
			}
			continue // collect what the batches finished meanwhile at once
		}
		if err := sleep(ctx, poll); err != nil {
			return err
		}
	}
}

// unfinished counts the requests that would be left to run online if the batches were
// cancelled now: those not final in the ledger, less those the running batches report
// completed (a cancelled batch keeps them; its failed ones may have to run again).
func (p *Progress) unfinished() int64 {
	n := p.Stats.Pending + p.Stats.InFlight
	for _, part := range p.Parts {
		if !part.Collected {
			n -= min(part.Requests, part.Counts.Completed)
		}
	}
	return max(0, n)
}

func emit(on func(HybridEvent), ev HybridEvent) {
	if on != nil {
		on(ev)
	}
}

// meanTokens is the mean worst-case tokens (prompt and max output) of the job's
// unfinished requests.
func (r *Runner) meanTokens(ctx context.Context, job *sluice.Job) (float64, error) {
	var n, sum int64
	add := func(it *sluice.Item) error {
		n++
		sum += it.Estimate.PromptTokens + it.Estimate.MaxOutputTokens
		return nil
	}
	if err := r.store.Pending(ctx, job.ID, 0, 0, add); err != nil {
		return 0, err
	}
	parts, err := r.store.Parts(ctx, job.ID)
	if err != nil {
		return 0, err
	}
	for _, p := range parts {
		if !p.Collected {
			if err := r.store.PartItems(ctx, job.ID, p.Number, add); err != nil {
				return 0, err
			}
		}
	}
	if n == 0 {
		return 0, nil
	}
	return float64(sum) / float64(n), nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
