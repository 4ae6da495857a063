package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/storeurl"
)

// Store is a sluice.Store kept in a PostgreSQL database. It is safe for concurrent use,
// and any number of processes, on any number of machines, may share one database.
type Store struct {
	pool *pgxpool.Pool

	mu   sync.Mutex
	jobs map[string]int64 // job id → job.seq; a job's seq never changes

	floors floors // where claims start looking for pending lines, by job
}

var (
	_ sluice.Store        = (*Store)(nil)
	_ sluice.RateStore    = (*Store)(nil)
	_ sluice.HistoryStore = (*Store)(nil)
	_ sluice.JobDeleter   = (*Store)(nil)
)

// SchemaParam is the query parameter of a connection URL that names the schema the store
// keeps its tables in ("postgres://host/db?schema=team_a"). Open creates the schema when
// it is missing and puts it first on the connections' search_path. Without it, the
// tables go where the connection's search_path says (public, by default).
const SchemaParam = "schema"

// Open connects to the database at connString (a postgres:// URL, or anything
// pgxpool.ParseConfig accepts), and brings the store's schema up to date under an
// advisory lock, so that many processes may open one database at once. A "schema"
// parameter in the URL selects the schema the tables live in (see SchemaParam).
func Open(ctx context.Context, connString string) (*Store, error) {
	s, err := open(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("open postgres store%s: %w", location(connString), err)
	}
	return s, nil
}

// open is Open, its errors not yet naming the store.
func open(ctx context.Context, connString string) (*Store, error) {
	connString, schema, err := splitSchema(connString)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	// pgx prepares and caches each statement; after a few runs PostgreSQL may plan it once
	// for any parameters, from the statistics of the moment, which for a job's first
	// thousand lines are those of an empty table: a lookup of custom_ids then scans every
	// line of the job, and ingest slows down with each batch. The store's statements are
	// cheap to plan: plan each run with its own parameters.
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool, jobs: map[string]int64{}}, nil
}

// location is " " and the store at connString, for messages, when it is a URL: without
// its password. It is empty for a keyword/value string ("host=… password=…"), which pgx's
// errors name, redacted, when they need to.
func location(connString string) string {
	if !isURL(connString) {
		return ""
	}
	return " " + storeurl.Redact(connString)
}

// isURL reports whether connString is a connection URL rather than keyword/value pairs.
func isURL(connString string) bool {
	return strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://")
}

// splitSchema takes the SchemaParam parameter out of a URL connection string, which
// PostgreSQL would otherwise refuse as an unknown setting.
func splitSchema(connString string) (rest, schema string, err error) {
	if !isURL(connString) {
		return connString, "", nil
	}
	u, err := url.Parse(connString)
	if err != nil {
		return "", "", errors.New("malformed connection URL") // the URL may hold a password
	}
	q := u.Query()
	if !q.Has(SchemaParam) {
		return connString, "", nil
	}
	schema = q.Get(SchemaParam)
	if schema == "" {
		return "", "", fmt.Errorf("empty %s parameter", SchemaParam)
	}
	q.Del(SchemaParam)
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// Close closes the store's connections. Calls in progress must have returned.
func (s *Store) Close() error {
	s.pool.Close()
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
	err := s.pool.QueryRow(ctx, `SELECT seq FROM job WHERE id = $1`, id).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
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

// MaxLine is the highest line number a job can have, as in the SQLite store.
const MaxLine = 1<<32 - 1

// Request states as stored.
const (
	statePending  = 0
	stateInFlight = 1
	stateDone     = 2
	stateFailed   = 3
)

// neverExpires is the lease of a request a part holds. Queries spell it out as a literal,
// sqlNeverExpires, so that the planner can use the partial index request_part.
const (
	neverExpires    = math.MaxInt64
	sqlNeverExpires = "9223372036854775807"
)

// decodeState is the RequestState of a stored state.
func decodeState(v int16) sluice.RequestState {
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

// Advisory lock keys: the first of the two int4 keys names sluice's use of the lock.
const (
	lockMigrate = 0x51ce0001 // with 0: the schema's migrations
	lockJob     = 0x51ce0002 // with the job's seq: ingest and part numbering of one job
)

// isUniqueViolation reports whether err is PostgreSQL refusing a duplicate key.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// blob stores an empty body as NULL, so that it reads back as nil.
func blob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// rollback ends tx when it was not committed; its error then adds nothing.
func rollback(ctx context.Context, tx pgx.Tx) { _ = tx.Rollback(context.WithoutCancel(ctx)) }
