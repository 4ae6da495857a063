package sluice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Engine defaults.
const (
	DefaultConcurrency = 64
	DefaultTimeout     = 10 * time.Minute
	DefaultLease       = 2 * time.Minute

	ingestFirst   = 64      // the first ingest batch is small so that dispatch starts at once
	ingestBatch   = 1000    // lines per AddRequests transaction after that
	ingestBytes   = 8 << 20 // bytes of bodies past which a batch is written early: long lines stay bounded in memory
	flushSize     = 512     // outcomes per Complete transaction
	flushInterval = 50 * time.Millisecond
	maxClaim      = 256
)

// errStopped means dispatch was asked to stop (Drain, or an abort).
var errStopped = errors.New("dispatch stopped")

// Config configures an Engine. The zero value of every field means its default.
type Config struct {
	// Concurrency caps the requests in flight (DefaultConcurrency).
	Concurrency int
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
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
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
		c.Owner = "worker-" + randomHex(6)
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
		now:     time.Now,
	}, nil
}

// Start begins running job: ingesting src into the ledger (src may be nil when the job's
// input is already ingested) and sending its pending requests. Cancelling ctx stops at
// once: requests in flight are cut off and return to pending without spending an attempt.
// Wait for the run to end with Run.Wait. Options change this run only (WithBudgetPool).
func (e *Engine) Start(ctx context.Context, job *Job, src Source, opts ...RunOption) (*Run, error) {
	stats, err := e.store.Stats(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("start job %s: %w", job.ID, err)
	}
	sendCtx, cancelSends := context.WithCancel(ctx)
	r := &Run{
		e:           e,
		job:         job,
		src:         src,
		started:     e.now(),
		sendCtx:     sendCtx,
		cancelSends: cancelSends,
		drain:       make(chan struct{}),
		stopped:     make(chan struct{}),
		finished:    make(chan attemptResult, e.cfg.Concurrency),
		outcomes:    make(chan ledgerWrite, flushSize),
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

	sendCtx     context.Context // cancelled to cut off requests in flight
	cancelSends context.CancelFunc
	drain       chan struct{} // closed by Drain
	drainOnce   sync.Once
	stopped     chan struct{} // closed when dispatch must stop (drain or abort)
	stopOnce    sync.Once

	finished chan attemptResult // workers → dispatcher
	outcomes chan ledgerWrite   // dispatcher → ledger writer
	ingested chan struct{}      // ingest → dispatcher: more lines are in the ledger

	// Owned by the dispatcher goroutine.
	claimed []Item
	retries retryQueue
	running int

	// untilIdle ends the run once nothing is pending rather than waiting for the requests
	// other owners hold (StopWhenIdle); othersHold is set when it ended so.
	untilIdle  bool
	othersHold bool

	budget    *budget
	budgetHit atomic.Bool // dispatch stopped because the budget would be crossed

	// The run's share of the Engine's slots (fair.go), guarded by Engine.slots.
	tenant   string
	weight   float64
	slotWait chan struct{} // closed when a slot is given to the run
	granted  bool          // a slot was given to the run while it waited

	errMu    sync.Mutex
	abortErr error

	ingestDone                          atomic.Bool
	total, doneCount, failedCount       atomic.Int64
	retriesCount, throttledCount, inFly atomic.Int64
	usageMu                             sync.Mutex
	usage                               Usage
	cost                                float64

	err  error
	done chan struct{}
}

// Drain stops dispatching new requests; requests in flight finish (cancel the context
// passed to Start to cut them off). Safe to call more than once.
func (r *Run) Drain() {
	r.drainOnce.Do(func() { close(r.drain) })
	r.stop()
}

func (r *Run) stop() { r.stopOnce.Do(func() { close(r.stopped) }) }

// abort stops the run for a fatal reason: dispatch stops and requests in flight are cut
// off (they go back to pending).
func (r *Run) abort(err error) {
	r.errMu.Lock()
	if r.abortErr == nil {
		r.abortErr = err
	}
	r.errMu.Unlock()
	r.stop()
	r.cancelSends()
}

func (r *Run) aborted() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.abortErr
}

// Wait blocks until the run ends and returns nil when every request of the job is final
// (done or failed: see Stats for which), an error wrapping ErrInterrupted after Drain or a
// cancelled context, or one wrapping ErrAborted after a fatal error such as a rejected key.
func (r *Run) Wait() error {
	<-r.done
	return r.err
}

// Done is closed when the run has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

// Job returns the job being run. Read it only after Wait returns.
func (r *Run) Job() *Job { return r.job }

// main owns the run's goroutines: the ingester, the ledger writer and the lease renewer,
// with the dispatcher running here.
func (r *Run) main(ctx context.Context) {
	defer close(r.done)
	bg := context.WithoutCancel(ctx) // the ledger must be written even after a cancel

	var wg sync.WaitGroup
	writerErr := make(chan error, 1)
	wg.Go(func() { writerErr <- r.writeLedger(bg) })
	renewStop := make(chan struct{})
	wg.Go(func() { r.renewLeases(bg, renewStop) })
	ingestStop := make(chan struct{})
	var ingestWG sync.WaitGroup
	if !r.ingestDone.Load() {
		ingestWG.Go(func() { r.ingest(bg, ingestStop) })
	}

	dispatchErr := r.dispatch(ctx)

	close(ingestStop)
	ingestWG.Wait()
	close(r.outcomes)
	close(renewStop)
	wg.Wait()
	if err := <-writerErr; err != nil && dispatchErr == nil {
		dispatchErr = err
	}
	// Anything still in flight in the ledger under this owner (nothing, normally) goes
	// back to pending so that the next run takes it.
	if err := r.e.store.Release(bg, r.job.ID, r.e.cfg.Owner); err != nil && dispatchErr == nil {
		dispatchErr = fmt.Errorf("release leases: %w", err)
	}
	r.err = r.finish(bg, ctx, dispatchErr)
}

// finish records how the run ended in the job and returns Wait's error.
func (r *Run) finish(bg, ctx context.Context, dispatchErr error) error {
	job := r.job
	job.Elapsed += r.e.now().Sub(r.started)
	var err error
	switch {
	case r.aborted() != nil:
		job.State, job.Error = JobAborted, r.aborted().Error()
		err = fmt.Errorf("%w: %w", ErrAborted, r.aborted())
	case r.budgetStopped() && errors.Is(dispatchErr, errStopped):
		berr := r.budget.exhaustedError()
		job.State, job.Error = JobBudget, berr.Error()
		err = berr
	case dispatchErr != nil && !errors.Is(dispatchErr, errStopped) && ctx.Err() == nil:
		job.State, job.Error = JobAborted, dispatchErr.Error()
		err = fmt.Errorf("%w: %w", ErrAborted, dispatchErr)
	case dispatchErr != nil:
		job.State, job.Error = JobInterrupted, "interrupted"
		err = ErrInterrupted
	case r.othersHold:
		job.State, job.Error = JobRunning, "" // other owners still hold requests
	default:
		job.State, job.Error = JobCompleted, ""
	}
	if uerr := r.e.store.UpdateJob(bg, job); uerr != nil {
		return errors.Join(err, fmt.Errorf("update job: %w", uerr))
	}
	return err
}

// budgetStopped reports whether dispatch stopped on the budget (and not on a Drain).
func (r *Run) budgetStopped() bool {
	select {
	case <-r.drain:
		return false
	default:
		return r.budgetHit.Load()
	}
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
			r.abort(fmt.Errorf("read input: %w", err))
			return
		}
		if nr.Line <= skip {
			continue
		}
		batch = append(batch, nr)
		size += len(nr.Request.Body)
		if len(batch) >= limit || size >= ingestBytes {
			if err := flush(); err != nil {
				r.abort(err)
				return
			}
			limit = ingestBatch
		}
	}
	if err := flush(); err != nil {
		r.abort(err)
		return
	}
	r.job.IngestDone = true
	if err := r.e.store.UpdateJob(ctx, r.job); err != nil {
		r.abort(fmt.Errorf("update job: %w", err))
		return
	}
	r.ingestDone.Store(true)
	select {
	case r.ingested <- struct{}{}:
	default:
	}
}

// ledgerWrite is one message to the ledger writer: an outcome to record, or (flushed
// set) a request to write the batch now and say how that went.
type ledgerWrite struct {
	outcome Outcome
	flushed chan<- error
}

// writeLedger is the one writer of outcomes: it batches them into Complete calls.
func (r *Run) writeLedger(ctx context.Context) error {
	ticker := time.NewTicker(flushInterval)
	defer ticker.Stop()
	batch := make([]Outcome, 0, flushSize)
	var failed error
	flush := func() {
		if len(batch) == 0 || failed != nil {
			batch = batch[:0]
			return
		}
		if err := r.e.store.Complete(ctx, r.job.ID, r.e.cfg.Owner, batch); err != nil {
			failed = fmt.Errorf("write ledger: %w", err)
			r.abort(failed)
		}
		batch = batch[:0]
	}
	for {
		select {
		case w, ok := <-r.outcomes:
			if !ok {
				flush()
				return failed
			}
			if w.flushed != nil {
				flush()
				w.flushed <- failed
				continue
			}
			batch = append(batch, w.outcome)
			if len(batch) >= flushSize {
				flush()
			}
		case <-ticker.C:
			flush()
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
			if err := r.e.store.Renew(ctx, r.job.ID, r.e.cfg.Owner, r.e.cfg.Lease); err != nil {
				r.e.cfg.Logger.Warn("renew leases", "job", r.job.ID, "err", err)
			}
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
