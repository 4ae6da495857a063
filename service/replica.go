package service

import (
	"context"
	"fmt"

	"github.com/sluice-llm/sluice"
)

// Replicas: several servers on one store share its batches. Each batch is run by the one
// server session that holds its runner lease (LeaseStore); the session renews the leases
// of the batches it runs every LeaseTTL/3 and, on the same tick, takes those no live
// session holds: new ones a server could not start, and the batches of a server that
// died, once their lease expired. A server that closes releases its leases, and the
// others take its batches on their next tick.

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
		}
	}
}

// adopt starts the lifecycle of each batch that is not final and whose lease no live
// server holds.
func (s *Service) adopt(ctx context.Context) error {
	docs, err := s.cfg.Store.ObjectsWithStatus(ctx, kindBatch, activeStatuses...)
	if err != nil {
		return fmt.Errorf("find batches: %w", err)
	}
	for _, doc := range docs {
		rec, err := decodeRecord[batchRecord](doc)
		if err != nil {
			return fmt.Errorf("find batches: %w", err)
		}
		if err := s.adoptOne(ctx, rec); err != nil {
			return err
		}
	}
	return nil
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
	s.launch(rec.ID, a)
	return nil
}
