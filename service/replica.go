package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-llm/sluice"
)

// Replicas: several servers on one store share its batches. Each batch is run by the one
// server session that holds its runner lease (LeaseStore); the session renews the leases
// of the batches it runs every LeaseTTL/3 and, on the same tick, takes those no live
// session holds: new ones a server could not start, and the batches of a server that
// died, once their lease expired. A server that closes releases its leases, and the
// others take its batches on their next tick.

// kindSession is the kind of the leases that tell a server session is alive.
const kindSession = "session"

// holdSession takes or renews the lease that tells other servers this session is alive,
// so that none settles its budget reservations as those of a server that died.
func (s *Service) holdSession(ctx context.Context) error {
	now := s.cfg.Clock.Now()
	held, err := s.cfg.Store.TakeLease(ctx, kindSession, s.session, s.session, now, now.Add(s.cfg.LeaseTTL))
	if err == nil && !held {
		err = fmt.Errorf("session %s is held by another server", s.session)
	}
	if err != nil {
		return fmt.Errorf("hold session: %w", err)
	}
	return nil
}

// claimEnded reports whether the server session named session has ended (closed, or
// died: its lease expired; or it never had one, from before leases) and, if so, takes
// its lease for LeaseTTL, so that of several servers starting at once one settles what
// it left.
func (s *Service) claimEnded(ctx context.Context, session string) (bool, error) {
	now := s.cfg.Clock.Now()
	return s.cfg.Store.TakeLease(ctx, kindSession, session, s.session, now, now.Add(s.cfg.LeaseTTL))
}

// dropEnded drops the leases of the server session named ended, known to have ended
// (Config.Ended): its session lease, so that its budget reservations are settled, and
// its runner leases on the unfinished batches, so that they are adopted at once.
func (s *Service) dropEnded(ctx context.Context, ended string) error {
	if ended == "" || ended == s.session {
		return nil
	}
	recs, err := s.unfinished(ctx)
	if err != nil {
		return fmt.Errorf("drop ended session: %w", err)
	}
	if err := s.cfg.Store.ReleaseLease(ctx, kindSession, ended, ended); err != nil {
		return fmt.Errorf("drop ended session: %w", err)
	}
	for _, rec := range recs {
		if err := s.cfg.Store.ReleaseLease(ctx, kindBatch, rec.ID, ended); err != nil {
			return fmt.Errorf("drop ended session: %w", err)
		}
	}
	s.cfg.Logger.Info("took back the leases of a server that ended", "session", ended)
	return nil
}

// takeLease takes or renews this session's runner lease on batch id.
func (s *Service) takeLease(ctx context.Context, id string) (bool, error) {
	now := s.cfg.Clock.Now()
	return s.cfg.Store.TakeLease(ctx, kindBatch, id, s.session, now, now.Add(s.cfg.LeaseTTL))
}

// releaseLease hands batch id over to any other server at once.
func (s *Service) releaseLease(id string) {
	if err := s.cfg.Store.ReleaseLease(context.WithoutCancel(s.ctx), kindBatch, id, s.session); err != nil {
		s.cfg.Logger.Warn("release batch lease", "batch", id, "err", err)
	}
}

// keep is the goroutine that, every LeaseTTL/3 until Close, renews the leases of the
// batches this server runs, hands the cancels other servers stored to their runs, and
// adopts the batches no live server holds. New counts it in s.wg.
func (s *Service) keep() {
	defer s.wg.Done()
	for {
		tick, stop := s.cfg.Clock.NewTimer(s.cfg.LeaseTTL / 3)
		select {
		case <-s.closing:
			stop()
			return
		case <-tick:
		}
		ctx := context.WithoutCancel(s.ctx)
		if err := s.holdSession(ctx); err != nil {
			s.cfg.Logger.Warn("renew session lease", "err", err)
		}
		s.renew(ctx)
		if err := s.adopt(ctx); err != nil {
			s.cfg.Logger.Error("adopt batches", "err", err)
		}
	}
}

// renew renews the lease of each batch this server runs. A run whose lease another
// server took (this one was paused past it) stops; a run whose batch another server
// moved to cancelling is cancelled.
func (s *Service) renew(ctx context.Context) {
	s.mu.Lock()
	runs := make(map[string]*activeBatch, len(s.active))
	for id, a := range s.active {
		runs[id] = a
	}
	s.mu.Unlock()
	for id, a := range runs {
		held, err := s.takeLease(ctx, id)
		if err != nil {
			// The lease may still be live: the next tick tries again.
			s.cfg.Logger.Warn("renew batch lease", "batch", id, "err", err)
			continue
		}
		if !held {
			s.cfg.Logger.Warn("batch lease lost to another server: its run stops here", "batch", id)
			a.lose()
			continue
		}
		rec, err := s.batch(ctx, id, "")
		if err != nil {
			s.cfg.Logger.Warn("renew batch lease", "batch", id, "err", err)
			continue
		}
		if rec.Status == sluice.BatchCancelling {
			a.requestCancel()
			a.halt() // nothing more is sent for a batch cancelled elsewhere
		}
	}
}

// adopt settles the budget reservations of the server sessions that ended, then starts
// the lifecycle of each batch that is not final and whose lease no live server holds.
func (s *Service) adopt(ctx context.Context) error {
	recs, err := s.unfinished(ctx)
	if err != nil {
		return err
	}
	// One failure does not hold the other batches back.
	err = s.reconcile(ctx, recs)
	for _, rec := range recs {
		err = errors.Join(err, s.adoptOne(ctx, rec))
	}
	return err
}

// unfinished returns the batches that are not final, of any tenant and server.
func (s *Service) unfinished(ctx context.Context) ([]*batchRecord, error) {
	docs, err := s.cfg.Store.ObjectsWithStatus(ctx, kindBatch, activeStatuses...)
	if err != nil {
		return nil, fmt.Errorf("find batches: %w", err)
	}
	recs := make([]*batchRecord, 0, len(docs))
	for _, doc := range docs {
		rec, err := decodeRecord[batchRecord](doc)
		if err != nil {
			return nil, fmt.Errorf("find batches: %w", err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// adoptOne starts the lifecycle of rec when this server takes its lease.
func (s *Service) adoptOne(ctx context.Context, rec *batchRecord) error {
	a, ok := s.reserve(rec.ID)
	if !ok {
		return nil
	}
	held, err := s.takeLease(ctx, rec.ID)
	if err != nil || !held {
		s.unreserve(rec.ID)
		if err != nil {
			return fmt.Errorf("take batch lease: %w", err)
		}
		return nil
	}
	s.cfg.Logger.Info("resuming batch", "batch", rec.ID, "status", rec.Status)
	// Its budget checks start from its ledger, not from the last periodic reading of the
	// server that ran it.
	s.recordUsage(ctx, rec)
	s.launch(rec.ID, a)
	return nil
}
