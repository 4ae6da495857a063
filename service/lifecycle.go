package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ingest"
	"github.com/sluice-llm/sluice/tokens"
)

// activeBatch is a batch whose lifecycle goroutine is running.
type activeBatch struct {
	cancel     chan struct{} // closed when the client cancels the batch
	cancelOnce sync.Once
	run        atomic.Pointer[sluice.Run] // set while the batch runs on an engine
	lost       chan struct{}              // closed when another server took the batch's lease
	loseOnce   sync.Once
}

func (a *activeBatch) requestCancel() { a.cancelOnce.Do(func() { close(a.cancel) }) }

// lose tells the batch's goroutine that another server took its lease, and stops its
// run's sending at once (halt).
func (a *activeBatch) lose() {
	a.loseOnce.Do(func() { close(a.lost) })
	a.halt()
}

// halt stops the run, if one is running, from sending anything more, without waiting for
// it to end: the batch's goroutine drains it. Its requests in flight finish.
func (a *activeBatch) halt() {
	if run := a.run.Load(); run != nil {
		now, cancel := context.WithCancel(context.Background())
		cancel()
		_ = run.Stop(now) // returns at once: ctx is done
	}
}

// runEnd says why a batch's run ended.
type runEnd int

const (
	endDone     runEnd = iota // every request is final
	endCancel                 // the client cancelled the batch
	endExpire                 // the completion window passed
	endShutdown               // the server is closing or lost the batch's lease: it stays in_progress
	endQuota                  // the key's budget for the period is spent
	endAbort                  // the upstream stopped the run and no other could take it
)

// start stores a new batch, held by this server's lease, and starts its lifecycle
// goroutine. The batch's goroutine is counted before the batch is stored, so that Close
// waits for a batch being started and none is stored once Close has begun.
func (s *Service) start(ctx context.Context, rec *batchRecord) error {
	a, ok := s.reserve(rec.ID)
	if !ok {
		return errClosing
	}
	// The id is new: no other server holds its lease.
	_, err := s.takeLease(ctx, rec.ID)
	if err == nil {
		err = s.saveBatch(ctx, rec)
	}
	if err == nil {
		err = s.inputGone(ctx, rec)
	}
	if err != nil {
		s.unreserve(rec.ID)
		return err
	}
	s.launch(rec.ID, a)
	return nil
}

// inputGone looks at the input of batch rec, just saved, again: a client may have
// deleted it since CreateBatch read it, here or at another server (see DeleteFile). If
// it did, the batch is given up (removed, its lease released) and inputGone returns
// ENOTFOUND for the file, as if the deletion had come first: the deletion may not have
// seen the batch, and then removes the content.
func (s *Service) inputGone(ctx context.Context, rec *batchRecord) error {
	in, err := s.storedFile(ctx, rec.InputFileID, rec.Tenant)
	if err == nil && !in.Deleted {
		return nil
	}
	if err != nil && !isNotFound(err) {
		return err
	}
	if err := s.cfg.Store.DeleteObject(ctx, kindBatch, rec.ID, rec.Tenant); err != nil && !errors.Is(err, sluice.ErrNotFound) {
		return err
	}
	s.releaseLease(rec.ID)
	if in != nil {
		s.releaseInput(ctx, rec) // the deletion may have left the content for this batch
	}
	return notFound("file", rec.InputFileID)
}

// reserve counts the goroutine of batch id in s.wg and makes it active, unless it is
// active already or the server is closing.
func (s *Service) reserve(id string) (*activeBatch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, running := s.active[id]; running || s.closed {
		return nil, false
	}
	s.wg.Add(1)
	a := &activeBatch{cancel: make(chan struct{}), lost: make(chan struct{})}
	s.active[id] = a
	return a, true
}

// unreserve undoes reserve for a batch whose goroutine does not start.
func (s *Service) unreserve(id string) {
	s.mu.Lock()
	delete(s.active, id)
	s.mu.Unlock()
	s.wg.Done()
}

// launch starts the lifecycle goroutine of batch id, which the caller has reserved. When
// it ends, for whatever reason, the batch's lease is released: a batch left unfinished
// (the server closing, an error) is taken by the next server to look.
func (s *Service) launch(id string, a *activeBatch) {
	go func() {
		defer s.unreserve(id)
		defer s.releaseLease(id)
		if err := s.lifecycle(a, id); err != nil {
			s.cfg.Logger.Error("batch", "batch", id, "err", err)
		}
	}()
}

// resume runs as the server starts: it removes the files left to purge, then adopts
// the batches no live server holds, settling first what servers that ended left in
// their budget reservations.
func (s *Service) resume(ctx context.Context) error {
	if err := s.purgeDeleted(ctx); err != nil {
		return err
	}
	if err := s.adopt(ctx); err != nil {
		return fmt.Errorf("resume batches: %w", err)
	}
	return nil
}

// update applies fn to the stored batch id and saves it, serialised with every other
// change of the batch in this server (a cancel arriving while the batch moves on, say)
// but not with other batches'. A change another server stored between the read and the
// save (a cancel that reached it) is never undone: the save is conditional on the status
// read, and fn is applied again to what the other stored. A batch it moves to a terminal
// status is sent to its webhook. Only batch goroutines call it.
func (s *Service) update(id string, fn func(rec *batchRecord)) (*batchRecord, error) {
	ctx := context.WithoutCancel(s.ctx)
	unlock := s.batchLocks.lock(id)
	defer unlock()
	for {
		rec, err := s.batch(ctx, id, "")
		if err != nil {
			return nil, err
		}
		was := rec.Status
		fn(rec)
		saved, err := s.swapBatch(ctx, rec, was)
		if err != nil {
			return rec, err
		}
		if !saved {
			continue
		}
		if !was.Terminal() && rec.Status.Terminal() {
			s.releaseInput(ctx, rec)
			s.notify(rec)
		}
		return rec, nil
	}
}

// requestCancel moves tenant's batch id to cancelling and tells its goroutine, here or
// (on its next tick) in the server that runs it.
func (s *Service) requestCancel(ctx context.Context, id, tenant string) (*batchRecord, error) {
	unlock := s.batchLocks.lock(id)
	defer unlock()
	for {
		rec, err := s.batch(ctx, id, tenant)
		if err != nil {
			return nil, err
		}
		switch rec.Status {
		case sluice.BatchCancelling:
			return rec, nil
		case sluice.BatchValidating, sluice.BatchInProgress:
		default:
			return nil, &Error{Code: ECONFLICT, Reason: "batch_not_cancellable",
				Message: fmt.Sprintf("Cannot cancel a batch with status '%s'.", rec.Status)}
		}
		was := rec.Status
		rec.Status, rec.CancellingAt = sluice.BatchCancelling, ptr(s.now())
		saved, err := s.swapBatch(ctx, rec, was)
		if err != nil {
			return nil, err
		}
		if !saved {
			continue // the server running it moved it on meanwhile
		}
		s.mu.Lock()
		a := s.active[id]
		s.mu.Unlock()
		if a != nil {
			a.requestCancel()
		}
		return rec, nil
	}
}

// liveCounts overlays the progress of a running batch on its stored request counts.
func (s *Service) liveCounts(rec *batchRecord) {
	s.mu.Lock()
	a := s.active[rec.ID]
	s.mu.Unlock()
	if a == nil || (rec.Status != sluice.BatchInProgress && rec.Status != sluice.BatchCancelling) {
		return
	}
	if run := a.run.Load(); run != nil {
		p := run.Progress()
		rec.RequestCounts.Completed, rec.RequestCounts.Failed = p.Done, p.Failed
	}
}

// lifecycle takes batch id from whatever status it is in to a terminal one, or until the
// server closes.
func (s *Service) lifecycle(a *activeBatch, id string) error {
	ctx := context.WithoutCancel(s.ctx)
	rec, err := s.batch(ctx, id, "")
	if err != nil {
		return err
	}
	if rec.Status == sluice.BatchValidating {
		if rec, err = s.validateBatch(ctx, a, rec); err != nil || rec == nil {
			return err
		}
	}
	end := endDone
	if rec.Status == sluice.BatchInProgress {
		var runErr error
		end, runErr = s.runBatch(a, rec)
		// An upstream that stopped the run hands the batch to another that serves its
		// models; the ledger keeps what was done, so nothing is sent twice.
		tried := []string{rec.Route}
		for abort := (*upstreamAbort)(nil); end != endShutdown && errors.As(runErr, &abort); {
			next := s.failover(rec, tried)
			if next == "" {
				break
			}
			s.cfg.Logger.Warn("batch fails over", "batch", id, "from", rec.Route, "to", next, "err", abort.err)
			if rec, err = s.update(id, func(r *batchRecord) { r.Route = next }); err != nil {
				return err
			}
			tried = append(tried, next)
			end, runErr = s.runBatch(a, rec)
		}
		if end == endShutdown {
			return nil
		}
		if errors.Is(runErr, sluice.ErrAborted) {
			// The batch fails, but what finished is paid for: it is delivered.
			return s.finalize(ctx, rec, endAbort, runErr)
		}
		if runErr != nil && !errors.Is(runErr, sluice.ErrInterrupted) {
			return runErr
		}
		if end == endDone {
			rec, err = s.update(id, func(rec *batchRecord) {
				if rec.Status == sluice.BatchInProgress {
					rec.Status, rec.FinalizingAt = sluice.BatchFinalizing, ptr(s.now())
				}
			})
			if err != nil {
				return err
			}
		}
	}
	return s.finalize(ctx, rec, end, nil)
}

// validateBatch validates the batch's input and moves it on: to failed, in_progress, or
// (when the client cancelled it meanwhile) cancelling. It returns nil when the server
// closed first: the batch stays validating.
func (s *Service) validateBatch(ctx context.Context, a *activeBatch, rec *batchRecord) (*batchRecord, error) {
	v, err := s.validate(ctx, rec, stopOn(a.cancel, s.closing, a.lost))
	if errors.Is(err, errStopped) {
		select {
		case <-s.closing:
			return nil, nil
		case <-a.lost:
			return nil, nil
		default: // cancelled: the stored status is cancelling
			return s.batch(ctx, rec.ID, "")
		}
	}
	if err != nil {
		return nil, err
	}
	return s.update(rec.ID, func(rec *batchRecord) {
		rec.RequestCounts.Total = v.total
		if rec.Status != sluice.BatchValidating {
			return
		}
		if len(v.errs) > 0 {
			rec.Status, rec.FailedAt = sluice.BatchFailed, ptr(s.now())
			rec.Errors = &sluice.BatchErrors{Object: "list", Data: v.errs}
			return
		}
		rec.Status, rec.InProgressAt = sluice.BatchInProgress, ptr(s.now())
		rec.Route = v.route
		if len(v.models) == 1 {
			for m := range v.models {
				rec.Model = ptr(m)
			}
		}
	})
}

// runBatch runs the batch's job on its upstream's engine until every request is final,
// the client cancels, the window passes or the server closes.
func (s *Service) runBatch(a *activeBatch, rec *batchRecord) (runEnd, error) {
	ctx := context.WithoutCancel(s.ctx)
	up := s.route(rec.Route)
	if up == nil {
		return endDone, fmt.Errorf("%w: upstream %q is no longer configured", sluice.ErrAborted, rec.Route)
	}
	in, err := s.storedFile(ctx, rec.InputFileID, rec.Tenant)
	if err != nil {
		return endDone, fmt.Errorf("%w: input file: %w", sluice.ErrAborted, err)
	}
	job, err := s.cfg.Store.Job(ctx, rec.ID)
	if errors.Is(err, sluice.ErrNotFound) {
		job = &sluice.Job{ID: rec.ID, State: sluice.JobRunning, Input: in.ID}
		err = s.cfg.Store.CreateJob(ctx, job)
	}
	if err != nil {
		return endDone, fmt.Errorf("run batch: %w", err)
	}
	// This server owns the batch: what a crashed one left in flight goes back to pending.
	if err := s.cfg.Store.Release(ctx, job.ID, ""); err != nil {
		return endDone, fmt.Errorf("run batch: %w", err)
	}
	var src sluice.Source
	if !job.IngestDone {
		f, err := os.Open(s.filePath(in.Path))
		if err != nil {
			return endDone, fmt.Errorf("%w: input file: %w", sluice.ErrAborted, err)
		}
		defer f.Close()
		src = ingest.NewSource(f, tokens.Default())
	}
	if s.overQuota(ctx, rec) {
		return endQuota, nil
	}
	// Slots are shared fairly between keys first, then between a key's batches.
	opts := []sluice.RunOption{sluice.WithTenant(rec.Tenant, 1)}
	pool, err := s.budgetPool(ctx, rec.Tenant, s.cfg.Now())
	if err != nil {
		return endDone, fmt.Errorf("run batch: %w", err)
	}
	if pool != nil {
		opts = append(opts, sluice.WithBudgetPool(pool))
	}
	run, err := up.Engine.Start(s.ctx, job, src, opts...)
	if err != nil {
		return endDone, fmt.Errorf("run batch: %w", err)
	}
	a.run.Store(run)
	end := s.await(ctx, a, run, rec)
	if end != endDone {
		_ = run.Stop(context.WithoutCancel(ctx)) // drains, and returns when the run has ended
	}
	err = run.Wait()
	s.recordUsage(ctx, rec)
	if err == nil && (end == endShutdown || end == endExpire || end == endQuota) {
		end = endDone // every request finished anyway: the batch is complete
	}
	if errors.Is(err, sluice.ErrBudgetExhausted) {
		// The key's pool could not pay for the next request: the budget is spent.
		end, err = endQuota, nil
	}
	if errors.Is(err, sluice.ErrAborted) {
		err = &upstreamAbort{upstream: up.Name, err: err}
	}
	return end, err
}

// await waits until the batch's run is done, the client cancels, the window passes, the
// server closes or loses the batch's lease, or (checked every UsageInterval) the key's
// budget is spent. Every UsageInterval it stores the run's progress too.
func (s *Service) await(ctx context.Context, a *activeBatch, run *sluice.Run, rec *batchRecord) runEnd {
	expired, stopExpiry := s.cfg.Clock.NewTimer(time.Unix(*rec.ExpiresAt, 0).Sub(s.cfg.Clock.Now()))
	defer stopExpiry()
	for {
		tick, stopTick := s.cfg.Clock.NewTimer(s.cfg.UsageInterval)
		select {
		case <-run.Done():
			stopTick()
			return endDone
		case <-a.cancel:
			stopTick()
			return endCancel
		case <-expired:
			stopTick()
			return endExpire
		case <-s.closing:
			stopTick()
			return endShutdown
		case <-a.lost:
			stopTick()
			return endShutdown
		case <-tick:
			if s.overQuota(ctx, rec) {
				return endQuota
			}
			s.storeCounts(rec.ID, run)
		}
	}
}

// storeCounts stores the progress of the batch's run in its record, where the replicas
// that do not run it read it.
func (s *Service) storeCounts(id string, run *sluice.Run) {
	p := run.Progress()
	_, err := s.update(id, func(rec *batchRecord) {
		if rec.Status == sluice.BatchInProgress || rec.Status == sluice.BatchCancelling {
			rec.RequestCounts.Completed, rec.RequestCounts.Failed = p.Done, p.Failed
		}
	})
	if err != nil {
		s.cfg.Logger.Warn("store batch progress", "batch", id, "err", err)
	}
}

// upstreamAbort is a run stopped by its upstream (a rejected key, an unknown model, a used
// up quota): another upstream that serves the batch's models may do better.
type upstreamAbort struct {
	upstream string
	err      error
}

func (e *upstreamAbort) Error() string { return fmt.Sprintf("upstream %s: %v", e.upstream, e.err) }
func (e *upstreamAbort) Unwrap() error { return e.err }

// finalize writes the output and error files of a batch whose run has ended and moves it
// to its terminal status: cancelled when it was cancelling; expired when the window
// passed (its unfinished requests go to the error file as batch_expired); failed with an
// insufficient_quota error when its key's budget ran out (its unfinished requests go to
// the error file as insufficient_quota, its finished ones to the output file); failed
// with an upstream_error (abortErr) when its upstream stopped it, its finished requests
// still in the output file; completed otherwise.
func (s *Service) finalize(ctx context.Context, rec *batchRecord, end runEnd, abortErr error) error {
	if rec.Status.Terminal() {
		return nil
	}
	var unf *unfinished
	switch end {
	case endExpire:
		unf = unfinishedExpired
	case endQuota:
		unf = unfinishedQuota
	}
	res, err := s.writeResults(ctx, rec, unf)
	if err != nil {
		return err
	}
	_, err = s.update(rec.ID, func(rec *batchRecord) {
		rec.OutputFileID, rec.ErrorFileID = res.outputID, res.errorID
		rec.RequestCounts.Completed, rec.RequestCounts.Failed = res.done, res.failed
		rec.Usage = res.usage
		t := ptr(s.now())
		switch {
		case rec.Status == sluice.BatchCancelling:
			rec.Status, rec.CancelledAt = sluice.BatchCancelled, t
		case end == endQuota:
			rec.Status, rec.FailedAt = sluice.BatchFailed, t
			rec.Errors = &sluice.BatchErrors{Object: "list", Data: []sluice.BatchError{{Code: codeInsufficientQuota, Message: msgQuota}}}
		case end == endAbort:
			rec.Status, rec.FailedAt = sluice.BatchFailed, t
			rec.Errors = &sluice.BatchErrors{Object: "list", Data: []sluice.BatchError{{Code: "upstream_error", Message: abortErr.Error()}}}
		case end == endExpire:
			rec.Status, rec.ExpiredAt = sluice.BatchExpired, t
		default:
			rec.Status, rec.CompletedAt = sluice.BatchCompleted, t
			if rec.FinalizingAt == nil {
				rec.FinalizingAt = t
			}
		}
	})
	return err
}

// errStopped means validation was stopped by a cancel or the server closing.
var errStopped = errors.New("stopped")

// stopOn returns a function reporting whether any of chans is closed.
func stopOn(chans ...<-chan struct{}) func() bool {
	return func() bool {
		for _, c := range chans {
			select {
			case <-c:
				return true
			default:
			}
		}
		return false
	}
}
