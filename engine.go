package sluice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/sluice-llm/sluice/internal/ids"
)

// Engine defaults.
const (
	DefaultConcurrency = 64
	DefaultTimeout     = 10 * time.Minute
	DefaultLease       = 2 * time.Minute
	// DefaultMaxBytesInFlight caps the request body bytes in flight at 16 MiB: far above
	// what the default concurrency of typical requests (a few KB each) holds, it binds
	// only for long lines (MiBs of text, images as base64), where concurrency × line size
	// would otherwise set the memory. Raise it for many large requests to a slow upstream.
	DefaultMaxBytesInFlight = 16 << 20

	ingestFirst = 64      // the first ingest batch is small so that dispatch starts at once
	ingestBatch = 1000    // lines per AddRequests transaction after that
	ingestBytes = 4 << 20 // bytes of bodies past which a batch is written early: long lines stay bounded in memory
	flushSize   = 512     // outcomes per Complete transaction at most
	// flushDelay is how long an outcome may wait for others to share its commit: at zero
	// latency a commit per few outcomes cost more than the rest of the ledger.
	flushDelay = 10 * time.Millisecond
	flushShare = 50 // an outcome waits for others at most a 1/flushShare of the latency
	// flushRest is how many times as long as its last commit the ledger writer rests
	// before the next that the dispatcher hurries or a delay brings: it spends at most a
	// 1/(flushRest+1) of its time committing. At zero latency the dispatcher always waits
	// for a slot, and a commit at each wait wrote 3 outcomes (31,656 commits for 100,000):
	// the commit's own cost (its pages to the WAL) was most of the ledger's.
	// The rest is at most a 1/flushShare of the answers' latency, or flushRestMax when
	// that is more, so that where commits are slow (PostgreSQL) an outcome's slot is not
	// held longer than the delay rule allows.
	flushRest    = 3
	flushRestMax = time.Millisecond
	maxClaim     = 256
	firstClaim   = 4 // a run's first claim, before it knows how long its lines are
)

// Config configures an Engine. The zero value of every field means its default.
type Config struct {
	// Concurrency caps the requests in flight (DefaultConcurrency).
	Concurrency int
	// MaxBytesInFlight caps the request body bytes in flight, summed over the requests
	// being sent and awaiting their answer (DefaultMaxBytesInFlight). A body larger than
	// the cap still goes, counted as the cap, so alone. Runs also claim no more than a
	// quarter of it ahead of sending.
	MaxBytesInFlight int64
	// RPM and TPM cap requests and tokens per minute. 0 means no cap of sluice's own: the
	// limits are learned from the upstream's x-ratelimit headers and its 429s.
	RPM, TPM float64
	// MaxAttempts is how many times one request is sent before it fails
	// (DefaultMaxAttempts).
	MaxAttempts int
	// Timeout bounds one attempt, from sending to the last byte (DefaultTimeout).
	Timeout time.Duration
	// BackoffBase and BackoffMax shape the exponential backoff between attempts
	// (DefaultBackoffBase, DefaultBackoffMax).
	BackoffBase, BackoffMax time.Duration
	// BreakerFailures is how many consecutive upstream faults open the circuit breaker
	// (DefaultBreakerFailures); BreakerCooldown is how long it stays open before a probe
	// (DefaultBreakerCooldown).
	BreakerFailures int
	BreakerCooldown time.Duration
	// UnreachableAfter is how long an upstream that has never answered may go without
	// answering at all (connection refused, unknown host) before a run aborts with
	// ErrUnreachable (DefaultUnreachableAfter). After a first answer, sluice keeps
	// retrying under the breaker instead.
	UnreachableAfter time.Duration
	// Lease is how long a claim holds a request before another worker may take it
	// (DefaultLease); it is renewed while the request is being worked on.
	Lease time.Duration
	// Owner names this worker in the ledger; default a random id.
	Owner string
	// Cost prices usage for the live $ figure and the budget; nil means no cost is
	// tracked.
	Cost func(model string, u Usage) float64
	// Budget caps what a job may spend over all its runs; the zero value caps nothing.
	Budget Budget
	// Logger receives the engine's notices; nil discards them.
	Logger *slog.Logger
	// Observer, when set, is told about every finished attempt (metrics, dashboards).
	Observer Observer
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxBytesInFlight == 0 {
		c.MaxBytesInFlight = DefaultMaxBytesInFlight
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = DefaultBreakerFailures
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.UnreachableAfter == 0 {
		c.UnreachableAfter = DefaultUnreachableAfter
	}
	if c.Owner == "" {
		c.Owner = "worker-" + ids.Hex(6)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency)
	case c.MaxBytesInFlight < 1:
		return fmt.Errorf("max bytes in flight must be positive, got %d", c.MaxBytesInFlight)
	case c.RPM < 0 || c.TPM < 0:
		return errors.New("rpm and tpm must not be negative")
	case c.MaxAttempts < 1:
		return fmt.Errorf("max attempts must be at least 1, got %d", c.MaxAttempts)
	case c.Timeout < 0 || c.BackoffBase < 0 || c.BackoffMax < 0 || c.BreakerCooldown < 0 || c.Lease < 0 || c.UnreachableAfter < 0:
		return errors.New("durations must not be negative")
	case c.Budget.MaxCost < 0 || c.Budget.MaxTokens < 0:
		return errors.New("budget must not be negative")
	case c.Budget.MaxCost > 0 && c.Cost == nil:
		return errors.New("a cost budget needs a Cost function")
	case c.BreakerFailures < 1:
		return fmt.Errorf("breaker failures must be at least 1, got %d", c.BreakerFailures)
	}
	return nil
}

// Source yields a job's input in line order.
type Source interface {
	// Next returns the next input line, or io.EOF after the last. A line that is not a
	// valid request comes back with its Err set, not as an error; an error means the input
	// itself could not be read.
	Next() (NewRequest, error)
}

// Engine sends the requests of jobs through one upstream. The concurrency cap, the rate
// limits and the circuit breaker belong to the Engine, so runs started on one Engine share
// them. Safe for concurrent use.
type Engine struct {
	cfg   Config
	store Store
	up    Upstream

	lim     *limiter
	breaker *breaker

	slots    sync.Mutex
	inFlight int
	fair     fairSlots // who gets the next free slot (fair.go)

	bytes *semaphore.Weighted // request body bytes in flight (inflight.go)

	// answered is set by the first answer that proves the key and model work.
	answered atomic.Bool
	ev       evidence // what the answers so far prove about the upstream and its models
	now      func() time.Time
}

// New returns an Engine that keeps its ledger in store and sends through up.
func New(store Store, up Upstream, cfg Config) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sluice: %w", err)
	}
	if store == nil || up == nil {
		return nil, errors.New("sluice: New needs a store and an upstream")
	}
	return &Engine{
		cfg:     cfg,
		store:   store,
		up:      up,
		lim:     newLimiter(time.Now(), cfg.Concurrency, cfg.RPM, cfg.TPM),
		breaker: newBreaker(cfg.BreakerFailures, cfg.BreakerCooldown),
		bytes:   semaphore.NewWeighted(cfg.MaxBytesInFlight),
		now:     time.Now,
	}, nil
}

// Start begins running job: ingesting src into the ledger (src may be nil when the job's
// input is already ingested) and sending its pending requests. Cancelling ctx stops at
// once, as Run.StopAndCancel does: requests in flight are cut off and return to pending
// without spending an attempt. Wait for the run to end with Run.Wait. Options change this run only (WithBudgetPool).
func (e *Engine) Start(ctx context.Context, job *Job, src Source, opts ...RunOption) (*Run, error) {
	stats, err := e.store.Stats(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("start job %s: %w", job.ID, err)
	}
	sendCtx, cancelSends := context.WithCancelCause(ctx)
	r := &Run{
		e:           e,
		job:         job,
		src:         src,
		started:     e.now(),
		sendCtx:     sendCtx,
		cancelSends: cancelSends,
		stopped:     make(chan struct{}),
		finished:    make(chan attemptResult, e.cfg.Concurrency),
		work:        make(chan attemptArgs),
		outcomes:    make(chan ledgerWrite, flushSize),
		hurry:       make(chan struct{}, 1),
		ingested:    make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	for _, opt := range opts {
		opt(r)
	}
	if r.budget == nil {
		r.budget = &budget{limit: e.cfg.Budget, cost: e.cfg.Cost}
		r.budget.spent = r.priorSpending(stats)
	}
	r.total.Store(stats.Total)
	r.doneCount.Store(stats.Done)
	r.failedCount.Store(stats.Failed)
	r.ingestDone.Store(job.IngestDone || src == nil)
	if job.State != JobRunning {
		job.State, job.Error = JobRunning, ""
		if err := e.store.UpdateJob(ctx, job); err != nil {
			return nil, fmt.Errorf("start job %s: %w", job.ID, err)
		}
	}
	r.observeRun(true)
	go r.main(ctx)
	return r, nil
}

// StopWhenIdle ends the run as soon as no request is pending and none of its own is in
// flight, instead of waiting for the requests other owners hold (a provider batch's, say)
// to come back. The job then stays running unless every request is final.
func StopWhenIdle() RunOption {
	return func(r *Run) { r.untilIdle = true }
}

// Run is one run of one job on an Engine. Its methods are safe for concurrent use.
type Run struct {
	e       *Engine
	job     *Job
	src     Source
	started time.Time

	sendCtx     context.Context // cancelled, with the stop's cause, to cut off requests in flight
	cancelSends context.CancelCauseFunc
	stopped     chan struct{} // closed when dispatch must stop (stop.go)
	stopOnce    sync.Once
	stopMu      sync.Mutex
	stopKind    stopKind
	stopCause   error

	finished chan attemptResult // senders → dispatcher
	work     chan attemptArgs   // dispatcher → idle senders; closed when dispatch ends
	senders  sync.WaitGroup     // the senders (sender)
	outcomes chan ledgerWrite   // dispatcher → ledger writer
	// hurry asks the ledger writer to commit now: the dispatcher waits for a concurrency
	// slot, which outcomes waiting to be written may hold.
	hurry    chan struct{}
	ingested chan struct{} // ingest → dispatcher: more lines are in the ledger

	// Owned by the dispatcher goroutine.
	claimed  []Item
	claimAvg int64 // the mean body length of the last claim, 0 before the first
	// ahead delivers the claim made while the last one's requests are being sent
	// (claim.go); nil when none is being made. claimFull says that the last claim took
	// all it asked for, so that the ledger may have more.
	ahead     chan claimResult
	claimFull bool
	retries   retryQueue
	running   int
	// holdingSlot is set while a result is handled and its concurrency slot not yet
	// handed to the ledger writer with the outcome.
	holdingSlot bool

	// untilIdle ends the run once nothing is pending rather than waiting for the requests
	// other owners hold (StopWhenIdle); othersHold is set when it ended so.
	untilIdle  bool
	othersHold bool

	budget *budget

	// The run's share of the Engine's slots (fair.go), guarded by Engine.slots.
	tenant   string
	weight   float64
	slotWait chan struct{} // closed when a slot is given to the run
	granted  bool          // a slot was given to the run while it waited

	ingestDone                          atomic.Bool
	total, doneCount, failedCount       atomic.Int64
	retriesCount, throttledCount, inFly atomic.Int64
	usageMu                             sync.Mutex
	usage                               Usage
	cost                                float64

	err  error
	done chan struct{}
}

// Wait blocks until the run ends and returns nil when every request of the job is final
// (done or failed: see Stats for which), an error wrapping ErrInterrupted after Stop,
// StopAndCancel or a cancelled context, ErrBudgetExhausted when the budget stopped it,
// ErrAborted after a fatal upstream answer such as a rejected key, or ErrFailed after
// sluice's own failure (the ledger could not be written).
func (r *Run) Wait() error {
	<-r.done
	return r.err
}

// Done is closed when the run has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

// Job returns the job being run. Read it only after Wait returns.
func (r *Run) Job() *Job { return r.job }

// main owns the run's goroutines: the ingester, the ledger writer, the lease renewer and
// the senders the dispatcher starts, with the dispatcher running here.
func (r *Run) main(ctx context.Context) {
	defer close(r.done)
	defer r.observeRun(false)
	bg := context.WithoutCancel(ctx) // the ledger must be written even after a cancel
	stopCancelWatch := context.AfterFunc(ctx, func() { r.cancelled(ctx) })
	defer stopCancelWatch()
	defer r.watchDrain(ctx)()

	var wg sync.WaitGroup
	wg.Go(func() { r.writeLedger(bg) })
	renewStop := make(chan struct{})
	wg.Go(func() { r.renewLeases(bg, renewStop) })
	ingestStop := make(chan struct{})
	var ingestWG sync.WaitGroup
	if !r.ingestDone.Load() {
		ingestWG.Go(func() { r.ingest(bg, ingestStop) })
	}

	dispatchErr := r.dispatch(ctx)
	switch {
	case dispatchErr == nil || errors.Is(dispatchErr, errStopped):
	case ctx.Err() != nil:
		// Whatever failed under a cancelled context failed because of the cancel.
		r.cancelled(ctx)
	default:
		r.fail(dispatchErr)
	}

	close(r.work) // dispatch's shutdown waited for every attempt: the senders are idle
	r.senders.Wait()
	close(ingestStop)
	ingestWG.Wait()
	close(r.outcomes)
	close(renewStop)
	wg.Wait()
	// Anything still in flight in the ledger under this owner (nothing, normally) goes
	// back to pending so that the next run takes it.
	if err := r.e.store.Release(bg, r.job.ID, r.e.cfg.Owner); err != nil {
		r.fail(err) // the store names the operation ("release requests: ...")
	}
	r.err = r.finish(bg, dispatchErr == nil)
}

// finish records how the run ended in the job and returns Wait's error.
func (r *Run) finish(bg context.Context, finished bool) error {
	job := r.job
	job.Elapsed += r.e.now().Sub(r.started)
	var err error
	job.State, job.Error, err = r.outcome(finished)
	if uerr := r.e.store.UpdateJob(bg, job); uerr != nil {
		return errors.Join(err, uerr) // the store names the operation ("update job ID: ...")
	}
	return err
}

// ingest adds the source's lines to the ledger in batches.
func (r *Run) ingest(ctx context.Context, stop <-chan struct{}) {
	skip := r.job.Ingested
	batch := make([]NewRequest, 0, ingestFirst)
	limit, size := ingestFirst, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := r.e.store.AddRequests(ctx, r.job.ID, batch); err != nil {
			return fmt.Errorf("add requests: %w", err)
		}
		r.job.Ingested = batch[len(batch)-1].Line
		r.total.Add(int64(len(batch)))
		clear(batch) // the bodies may be large: do not keep them past the write
		batch, size = batch[:0], 0
		select {
		case r.ingested <- struct{}{}:
		default:
		}
		return nil
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		nr, err := r.src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.fail(fmt.Errorf("read input: %w", err))
			return
		}
		if nr.Line <= skip {
			continue
		}
		batch = append(batch, nr)
		size += len(nr.Request.Body)
		if len(batch) >= limit || size >= ingestBytes {
			if err := flush(); err != nil {
				r.fail(err)
				return
			}
			limit = ingestBatch
		}
	}
	if err := flush(); err != nil {
		r.fail(err)
		return
	}
	r.job.IngestDone = true
	if err := r.e.store.UpdateJob(ctx, r.job); err != nil {
		r.fail(err) // the store names the operation ("update job ID: ...")
		return
	}
	r.ingestDone.Store(true)
	select {
	case r.ingested <- struct{}{}:
	default:
	}
}

// ledgerWrite is one message to the ledger writer: an outcome to record, or (flushed
// set) a request to write the batch now and say how that went. slot says that the
// outcome's attempt still holds its concurrency slot: the writer frees it once the outcome
// is in the ledger, so that a crash can lose (and the rerun re-pay) at most as many
// answers as the concurrency.
type ledgerWrite struct {
	outcome Outcome
	slot    bool
	flushed chan<- error
}

// writeLedger is the one writer of outcomes. It commits in groups: a batch is written
// once it holds as many outcomes as there are slots (at most flushSize), when a flush is
// asked for, when nothing more is queued and no attempt is in flight (every slot waits
// on this commit: waiting longer gains nothing), when the dispatcher waits for a slot
// the batch may hold (r.hurry: at a high latency every slot is wanted), or once its
// first outcome has waited its delay: flushDelay at most, and a 1/flushShare of the
// answers' latency, since an outcome waiting holds its slot and a wait of a tenth of the
// latency would cost a tenth of the throughput. The hurried and the delayed commits wait
// out the writer's rest after its last commit (flushRest), so that at a high rate the
// outcomes share commits. The slots of the outcomes are freed after the commit.
func (r *Run) writeLedger(ctx context.Context) {
	limit := min(flushSize, r.e.cfg.Concurrency)
	batch := make([]Outcome, 0, limit)
	slots := 0
	var failed error
	timer := time.NewTimer(flushDelay)
	timer.Stop()
	var due <-chan time.Time  // set while the batch waits for its delay
	var latency time.Duration // moving average of the outcomes' latencies
	var rest time.Time        // hurried and delayed commits wait until then (flushRest)
	flush := func() {
		if len(batch) > 0 && failed == nil {
			start := time.Now()
			if err := r.e.store.Complete(ctx, r.job.ID, r.e.cfg.Owner, batch); err != nil {
				failed = fmt.Errorf("write ledger: %w", err)
				r.fail(failed)
			}
			end := time.Now()
			rest = end.Add(min(flushRest*end.Sub(start), max(latency/flushShare, flushRestMax)))
		}
		clear(batch) // answer bodies: do not keep them past the write
		batch = batch[:0]
		for ; slots > 0; slots-- {
			r.e.release(r)
		}
		timer.Stop()
		due = nil
	}
	// flushAfter commits after d, or once the writer's rest is over if that is later.
	flushAfter := func(d time.Duration) {
		if d = max(d, time.Until(rest)); d <= 0 {
			flush()
			return
		}
		timer.Reset(d)
		due = timer.C
	}
	for {
		select {
		case w, ok := <-r.outcomes:
			if !ok {
				flush()
				return
			}
			if w.flushed != nil {
				flush()
				w.flushed <- failed
				continue
			}
			batch = append(batch, w.outcome)
			if w.slot {
				slots++
			}
			if l := w.outcome.Latency; l > 0 {
				latency += (l - latency) / 16
			}
			switch {
			case len(batch) >= limit:
				flush()
			case len(r.outcomes) == 0 && r.inFly.Load() == 0:
				flush()
			case len(batch) == 1:
				flushAfter(min(flushDelay, latency/flushShare))
			}
		case <-r.hurry:
			if slots > 0 {
				flushAfter(0)
			}
		case <-due:
			flushAfter(0)
		}
	}
}

// renewLeases keeps this worker's claims alive while it works on them.
func (r *Run) renewLeases(ctx context.Context, stop <-chan struct{}) {
	ticker := time.NewTicker(r.e.cfg.Lease / 3)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			if err := r.e.store.Renew(ctx, RenewParams{JobID: r.job.ID, Owner: r.e.cfg.Owner, Lease: r.e.cfg.Lease}); err != nil {
				r.e.cfg.Logger.Warn("renew leases", "job", r.job.ID, "err", err)
			}
		}
	}
}
