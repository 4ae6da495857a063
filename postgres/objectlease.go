package postgres

import (
	"context"
	"fmt"
	"time"
)

// TakeLease gives holder the lease on the object of kind with id until until, when no one
// holds it, it expired by now, or holder holds it already; it reports whether holder
// holds it now (service.LeaseStore). Two servers taking one lease at once are serialised
// by the row's lock: one inserts or updates it, the other then finds it held.
func (s *Store) TakeLease(ctx context.Context, kind, id, holder string, now, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO serve_lease (kind, id, holder, expires) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, id) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE serve_lease.holder = excluded.holder OR serve_lease.expires <= $5`,
		kind, id, holder, until.UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("take lease on %s %s: %w", kind, id, err)
	}
	return tag.RowsAffected() > 0, nil
}

// ReleaseLease drops holder's lease on the object of kind with id; a lease another holds
// is left alone (service.LeaseStore).
func (s *Store) ReleaseLease(ctx context.Context, kind, id, holder string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM serve_lease WHERE kind = $1 AND id = $2 AND holder = $3`, kind, id, holder)
	if err != nil {
		return fmt.Errorf("release lease on %s %s: %w", kind, id, err)
	}
	return nil
}

// SwapObject replaces the status and document of the object of kind with id only while
// its stored status is was, and reports whether it did (service.ObjectStore).
func (s *Store) SwapObject(ctx context.Context, kind, id, was, status string, doc []byte) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE serve_object SET status = $4, doc = $5 WHERE kind = $1 AND id = $2 AND status = $3`,
		kind, id, was, status, doc)
	if err != nil {
		return false, fmt.Errorf("save %s %s: %w", kind, id, err)
	}
	return tag.RowsAffected() > 0, nil
}
