package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluice-llm/sluice"
)

// BusyTimeout is how long a write waits for another process holding the database's write
// lock (two sluice processes may share one file) before it fails.
const BusyTimeout = 10 * time.Second

// Store is a sluice.Store kept in one SQLite database file. It is safe for concurrent use,
// and several processes may use the same file at once.
type Store struct {
	// w is the one writer connection: writes queue for it in this process rather than
	// fail with SQLITE_BUSY. r is a pool of read-only connections that WAL lets run
	// beside the writer.
	w, r *sql.DB
	st   stmts
	bulk bulkStmts // Complete's

	mu   sync.Mutex
	jobs map[string]int64 // job id → job.seq; a job's seq never changes
}

var (
	_ sluice.Store        = (*Store)(nil)
	_ sluice.RateStore    = (*Store)(nil)
	_ sluice.HistoryStore = (*Store)(nil)
	_ sluice.JobDeleter   = (*Store)(nil)
)

// Open opens the ledger at path, creating the file (mode FileMode) and its directory
// (DirMode) when missing, and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if err := create(abs); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s := &Store{jobs: map[string]int64{}}
	if err := s.open(ctx, abs); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, path string) error {
	w, err := sql.Open("sqlite", dsn(path,
		"_pragma", "journal_mode(WAL)",
		"_pragma", "synchronous(NORMAL)",
		"_pragma", "cache_size(-8192)", // 8 MiB: bodies pass through it; more only held them in memory
		"_pragma", "journal_size_limit(67108864)",
		"_txlock", "immediate", // take the write lock at BEGIN: no upgrade deadlocks
	))
	if err != nil {
		return err
	}
	s.w = w
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1) // keep it, and the statements prepared on it
	if err := migrate(ctx, w, migrations); err != nil {
		return err
	}
	r, err := sql.Open("sqlite", dsn(path, "_query_only", "1"))
	if err != nil {
		return err
	}
	s.r = r
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		return err
	}
	if err := s.st.prepare(ctx, w); err != nil {
		return err
	}
	return s.bulk.prepare(ctx, w)
}

// dsn is the driver's name for the database at path with the given parameters (pairs of
// key and value) and a busy timeout.
func dsn(path string, kv ...string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	if u.Path[0] != '/' { // a Windows drive letter
		u.Path = "/" + u.Path
	}
	return u.String()
}

// Close closes the database. Calls in progress must have returned.
func (s *Store) Close() error {
	var errs []error
	errs = append(errs, s.st.close(), s.bulk.close())
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close ledger: %w", err)
	}
	return nil
}

// jobSeq returns the internal key of the job with the given id, or ErrNotFound.
func (s *Store) jobSeq(ctx context.Context, id string) (int64, error) {
	s.mu.Lock()
	seq, ok := s.jobs[id]
	s.mu.Unlock()
	if ok {
		return seq, nil
	}
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM job WHERE id = ?`, id).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("job %s: %w", id, sluice.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	s.remember(id, seq)
	return seq, nil
}

func (s *Store) remember(id string, seq int64) {
	s.mu.Lock()
	s.jobs[id] = seq
	s.mu.Unlock()
}

// MaxLine is the highest line number a job can have: a request's row id packs its job and
// its line, id = job << 32 | line.
const MaxLine = 1<<32 - 1

// rowID is the id of the request row of a job's line.
func rowID(job, line int64) int64 { return job<<32 | line }

// jobRows are the first and last row ids a job's requests can have.
func jobRows(job int64) (first, last int64) { return rowID(job, 1), rowID(job, MaxLine) }

// Request states as stored.
const (
	statePending  = 0
	stateInFlight = 1
	stateDone     = 2
	stateFailed   = 3
)

// decodeState is the RequestState of a stored state.
func decodeState(v int64) sluice.RequestState {
	switch v {
	case statePending:
		return sluice.StatePending
	case stateInFlight:
		return sluice.StateInFlight
	case stateDone:
		return sluice.StateDone
	case stateFailed:
		return sluice.StateFailed
	}
	return sluice.RequestState(fmt.Sprintf("unknown(%d)", v))
}

// isUniqueViolation reports whether err is SQLite refusing a duplicate key.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) &&
		(se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// blob stores an empty body as NULL, so that it reads back as nil.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// rollback ends tx when it was not committed; its error then adds nothing.
func rollback(tx *sql.Tx) { _ = tx.Rollback() }
