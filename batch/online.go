package batch

import (
	"context"

	"github.com/sluice-llm/sluice"
)

// OnlineOwner is the owner in the ledger of a batch job's requests run online: fixed, so
// that what a crashed online run left in flight is released by the next ([NewOnline]).
func OnlineOwner(jobID string) string { return "online-" + jobID }

// Online runs a batch job's pending requests online, until none is pending: the requests
// batches hold are left to them. It is the online half of [Runner.RunHybrid] (pass its Run)
// and what runs a job's [Progress.Leftover]. Not safe for concurrent use.
type Online struct {
	job       *sluice.Job
	newEngine func(owner string) (eng *sluice.Engine, closeFn func(), err error)
	started   func(*sluice.Run) (stop func())

	eng     *sluice.Engine
	closeFn func()
	last    *sluice.Run
}

// NewOnline releases what an earlier online run of job left in flight (it crashed), and
// returns the Online that runs job's pending requests. newEngine makes its engine, on the
// first Run, with its requests held by owner (OnlineOwner); its closeFn is called by
// Close. started, when not nil, is called as each run starts (a progress display, say),
// and the function it returns as the run ends.
func NewOnline(ctx context.Context, st sluice.Store, job *sluice.Job,
	newEngine func(owner string) (eng *sluice.Engine, closeFn func(), err error),
	started func(*sluice.Run) (stop func()),
) (*Online, error) {
	if err := st.Release(ctx, job.ID, OnlineOwner(job.ID)); err != nil {
		return nil, err
	}
	return &Online{job: job, newEngine: newEngine, started: started, closeFn: func() {}}, nil
}

// Run runs the job's pending requests online until none is pending, and returns how the
// run ended (Run.Wait).
func (o *Online) Run(ctx context.Context) error {
	if o.eng == nil {
		eng, closeFn, err := o.newEngine(OnlineOwner(o.job.ID))
		if err != nil {
			return err
		}
		o.eng, o.closeFn = eng, closeFn
	}
	run, err := o.eng.Start(ctx, o.job, nil, sluice.StopWhenIdle())
	if err != nil {
		return err
	}
	o.last = run
	stop := func() {}
	if o.started != nil {
		stop = o.started(run)
	}
	err = run.Wait()
	stop()
	return err
}

// Last is the latest run, nil before the first.
func (o *Online) Last() *sluice.Run { return o.last }

// Close closes the engine, if one was made.
func (o *Online) Close() { o.closeFn() }
