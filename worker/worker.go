// Package worker is the loop of sluice worker: a process that joins the running jobs of a
// store that many processes share (PostgreSQL) and sends their pending requests beside
// the process that runs each job, taking its share of the job's limits as one of the
// job's live workers (sluice.Engine.Join).
//
// A worker leaves a job once no request of it is pending and its input is all in the
// ledger, or once the job stops running (the process that runs it was interrupted, or the
// job was stopped on its budget): how a job ends is its own process's to say; a worker
// only records a job completed when its run answered the last request.
package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice"
)

// DefaultPoll is how often a worker looks for work when it has none, and checks that the
// job it works is still running.
const DefaultPoll = time.Second

// ErrNoJob is the error, wrapped, of a worker restricted to a job (Config.Job) the store
// does not have.
var ErrNoJob = errors.New("worker: no such job")

// Store is the store a worker works: the jobs, their ledgers, and the timelines its runs
// record for the dashboard.
type Store interface {
	sluice.Store
	sluice.TimelineStore
}

// Config configures Run. Store, Registry and Engine are required.
type Config struct {
	// Store holds the jobs and their ledgers; Registry is where the worker heartbeats as
	// one of a job's workers (both the same PostgreSQL store).
	Store    Store
	Registry sluice.WorkerRegistry
	// Job restricts the worker to one job ("": any running job, the newest first).
	Job string
	// Follow keeps the worker waiting for new work when there is none, until ctx ends or
	// draining is closed; without it Run returns once no job has work left.
	Follow bool
	// Poll is how often to look for work, and to check the job worked is still running
	// (DefaultPoll when 0).
	Poll time.Duration
	// Accept, when set, says whether the worker takes a running job (the CLI leaves the
	// jobs run through a provider's Batch API to sluice batch).
	Accept func(*sluice.Job) bool
	// Engine makes the engine that works job over st, the store as a worker's runs see
	// it (its UpdateJob records only a job's completion), and the function that closes
	// what it opened.
	Engine func(job *sluice.Job, st Store) (eng *sluice.Engine, closeFn func(), err error)
	// RunOptions, when set, gives the options of each run of job by eng (a budget shared
	// through the store) and done, called once the run ended.
	RunOptions func(ctx context.Context, eng *sluice.Engine, job *sluice.Job) (opts []sluice.RunOption, done func(), err error)
	// OnEvent, when set, is told what the worker does, for its user.
	OnEvent func(Event)
}

// EventKind says what a worker did.
type EventKind int

// The events of a worker.
const (
	Joined  EventKind = iota // joined Job as Owner
	Left                     // left Job: Done requests were finished here
	Skipped                  // gave up on Job after Err; the job's other workers carry on
	Idle                     // found no work, and does not follow
)

// Event is something a worker did.
type Event struct {
	Kind  EventKind
	Job   string
	Owner string // the worker's owner id in the job's ledger (Joined, Left)
	Done  int64  // requests finished by this worker (Left)
	Err   error  // why the worker gave up on the job (Skipped)
}

// Run works jobs until none has work left or, with Follow, until ctx ends or draining is
// closed (the first Ctrl-C: runs started under ctx drain too, with sluice.WithDrain). A
// run that ends interrupted ends Run without an error. A job whose run fails is skipped
// from then on, and reported (Skipped), unless the worker is restricted to it: then Run
// returns the error.
func Run(ctx context.Context, cfg Config, draining <-chan struct{}) error {
	if cfg.Store == nil || cfg.Registry == nil || cfg.Engine == nil {
		return errors.New("worker: Run needs a store, a registry and an engine")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	w := &worker{cfg: cfg, skip: map[string]bool{}}
	for {
		job, err := w.next(ctx)
		if stopped(ctx, nil) {
			return nil
		}
		if err != nil {
			return err
		}
		if job == nil {
			if !cfg.Follow {
				w.emit(Event{Kind: Idle})
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-draining:
				return nil
			case <-time.After(cfg.Poll):
			}
			continue
		}
		err = w.work(ctx, job)
		switch {
		case stopped(ctx, err):
			return nil // the job's other workers carry on
		case err != nil && cfg.Job != "":
			return err
		case err != nil:
			w.emit(Event{Kind: Skipped, Job: job.ID, Err: err})
			w.skip[job.ID] = true
		}
	}
}

// stopped reports whether the worker was stopped: ctx ended, or a run of it ended
// interrupted (err). Being stopped is not a failure of the worker.
func stopped(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, sluice.ErrInterrupted)
}

type worker struct {
	cfg  Config
	skip map[string]bool // jobs this worker gave up on (its key was refused, say)
}

func (w *worker) emit(ev Event) {
	if w.cfg.OnEvent != nil {
		w.cfg.OnEvent(ev)
	}
}

// next returns a running job with requests left to send (or input still being read), the
// newest first; nil when there is none.
func (w *worker) next(ctx context.Context) (*sluice.Job, error) {
	st := w.cfg.Store
	var jobs []*sluice.Job
	if w.cfg.Job != "" {
		job, err := st.Job(ctx, w.cfg.Job)
		if errors.Is(err, sluice.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNoJob, w.cfg.Job)
		}
		if err != nil {
			return nil, err
		}
		jobs = []*sluice.Job{job}
	} else {
		var err error
		if jobs, err = st.Jobs(ctx, ""); err != nil {
			return nil, err
		}
	}
	for _, job := range jobs {
		if job.State != sluice.JobRunning || w.skip[job.ID] {
			continue
		}
		if w.cfg.Accept != nil && !w.cfg.Accept(job) {
			continue
		}
		stats, err := st.Stats(ctx, job.ID)
		if err != nil {
			return nil, err
		}
		if stats.Pending > 0 || !job.IngestDone {
			return job, nil
		}
	}
	return nil, nil
}

// work sends the job's requests until none is left to send, taking its share of the job's
// limits as one of its live workers.
func (w *worker) work(ctx context.Context, job *sluice.Job) error {
	st := w.cfg.Store
	eng, closeUp, err := w.cfg.Engine(job, completionStore{st})
	if err != nil {
		return err
	}
	defer closeUp()
	leave, err := eng.Join(ctx, w.cfg.Registry, job.ID, 0)
	if err != nil {
		return err
	}
	defer leave()
	w.emit(Event{Kind: Joined, Job: job.ID, Owner: eng.Owner()})
	var done int64
	defer func() { w.emit(Event{Kind: Left, Job: job.ID, Owner: eng.Owner(), Done: done}) }()
	for {
		fresh, err := st.Job(ctx, job.ID)
		if err != nil {
			return err
		}
		if fresh.State != sluice.JobRunning {
			return nil
		}
		before, err := st.Stats(ctx, job.ID)
		if err != nil {
			return err
		}
		if before.Pending == 0 && fresh.IngestDone {
			return nil
		}
		if before.Pending > 0 {
			stopped, err := w.runOnce(ctx, eng, fresh, before, &done)
			if stopped || err != nil {
				return err
			}
			continue
		}
		// The input is still being read into the ledger: wait for more lines.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.cfg.Poll):
		}
	}
}

// runOnce runs the job until nothing is pending, adding to done what it finished;
// stopped says that the job stopped running meanwhile (its own process stopped it).
func (w *worker) runOnce(ctx context.Context, eng *sluice.Engine, job *sluice.Job, before *sluice.Stats, done *int64) (stopped bool, err error) {
	opts, optsDone := []sluice.RunOption(nil), func() {}
	if w.cfg.RunOptions != nil {
		if opts, optsDone, err = w.cfg.RunOptions(ctx, eng, job); err != nil {
			return false, err
		}
	}
	run, err := eng.Start(ctx, job, nil, append(opts, sluice.StopWhenIdle())...)
	if err != nil {
		optsDone()
		return false, err
	}
	left := w.followJob(ctx, run, job.ID)
	err = run.Wait()
	optsDone()
	if left() {
		return true, nil // the job was stopped by its own process: leave it
	}
	p := run.Progress()
	*done += p.Done + p.Failed - before.Done - before.Failed
	return false, err
}

// followJob stops run (a drain: requests in flight finish) once the job is no longer
// running: the process that ran it was interrupted, or the job was stopped on its budget.
// left, called after the run ended, stops following and reports whether it did so.
func (w *worker) followJob(ctx context.Context, run *sluice.Run, jobID string) (left func() bool) {
	var stopped atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.cfg.Poll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-run.Done():
				return
			case <-t.C:
			}
			job, err := w.cfg.Store.Job(ctx, jobID)
			if err == nil && job.State != sluice.JobRunning {
				stopped.Store(true)
				_ = run.Stop(context.WithoutCancel(ctx))
				return
			}
		}
	})
	return func() bool {
		close(done)
		wg.Wait()
		return stopped.Load()
	}
}

// completionStore is the store as a worker's runs see it. The process that ran the job
// says how it ended (interrupted, aborted, out of budget); a worker leaving, for whatever
// reason, changes nothing of the job but its state, when its run answered the last
// request: then the job is completed.
type completionStore struct{ Store }

// UpdateJob records a job completed; any other update is the job's own process's to make.
func (s completionStore) UpdateJob(ctx context.Context, job *sluice.Job) error {
	if job.State != sluice.JobCompleted {
		return nil
	}
	fresh, err := s.Job(ctx, job.ID)
	if err != nil {
		return err
	}
	fresh.State, fresh.Error = sluice.JobCompleted, ""
	return s.Store.UpdateJob(ctx, fresh)
}
