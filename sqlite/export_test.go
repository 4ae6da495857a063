package sqlite

import "context"

// StopCheckpoints turns off the writer's automatic checkpoints, so that the WAL keeps
// every frame written (BenchmarkWALFrames counts them).
func StopCheckpoints(ctx context.Context, s *Store) error {
	_, err := s.w.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0")
	return err
}
