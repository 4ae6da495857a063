package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/internal/storeurl"
	"github.com/sluice-llm/sluice/pipeline"
	"github.com/sluice-llm/sluice/postgres"
	"github.com/sluice-llm/sluice/sqlite"
)

// store is what sluice's commands need of a store: the ledger, the parts of Batch API
// jobs, the upstreams' rates, the answer cache and the usage history. Both stores have it.
type store interface {
	batch.Store
	sluice.FailedRetrier
	sluice.RateStore
	sluice.HistoryStore
	sluice.JobDeleter
	sluice.TimelineStore // the dashboard's timelines (ui.go)
	pipeline.Cache
}

var (
	_ store = (*sqlite.Store)(nil)
	_ store = (*postgres.Store)(nil)
)

// jobLocker is a store that knows which process runs a job (PostgreSQL, where processes
// on many machines share it). A SQLite store is locked with a file beside it instead.
type jobLocker interface {
	LockJob(ctx context.Context, jobID string) (unlock func(), err error)
	JobHeld(ctx context.Context, jobID string) (bool, error)
}

var _ jobLocker = (*postgres.Store)(nil)

// storeLocation is where the store lives: --store, $SLUICE_STORE, or the default SQLite
// file in the user's data directory (see defaultStorePath).
func storeLocation(e *env, flag string) (storeurl.Location, error) {
	if flag == "" {
		flag = e.getenv("SLUICE_STORE")
	}
	if flag == "" {
		path, err := defaultStorePath(e)
		if err != nil {
			return storeurl.Location{}, err
		}
		return storeurl.Location{Kind: storeurl.SQLite, Path: path}, nil
	}
	loc, err := storeurl.Parse(flag)
	if err != nil {
		return storeurl.Location{}, usageError("%w", err) // "parse store: …"
	}
	return loc, nil
}

// openStore opens the store named by --store (or $SLUICE_STORE, or the default SQLite
// file), a SQLite file or a PostgreSQL database by its scheme, and returns it with where
// it is, for messages (a PostgreSQL URL without its password).
func openStore(ctx context.Context, e *env, flag string) (store, string, error) {
	loc, err := storeLocation(e, flag)
	if err != nil {
		return nil, "", err
	}
	return openLocation(ctx, loc)
}

// openLocation opens the store at loc.
func openLocation(ctx context.Context, loc storeurl.Location) (store, string, error) {
	if loc.Kind == storeurl.Postgres {
		st, err := postgres.Open(ctx, loc.URL)
		if err != nil {
			return nil, "", err // it names the store, without its password
		}
		return st, loc.String(), nil
	}
	st, err := sqlite.Open(ctx, loc.Path)
	if err != nil {
		return nil, "", err // it names the store
	}
	return st, loc.Path, nil
}

// openExistingStore opens the store for a command that only reads or deletes: a SQLite
// store that does not exist is an error, never created (a typo must not make a new,
// empty one).
func openExistingStore(ctx context.Context, e *env, flag string) (store, string, error) {
	loc, err := storeLocation(e, flag)
	if err != nil {
		return nil, "", err
	}
	if loc.Kind == storeurl.SQLite {
		if _, err := os.Stat(loc.Path); errors.Is(err, os.ErrNotExist) {
			return nil, "", usageError("no store at %s: sluice run (or batch submit, pipeline run) creates it; --store or $SLUICE_STORE names another", loc.Path)
		}
	}
	return openLocation(ctx, loc)
}

// lockStoreJob takes the lock that lets one process at a time run a job: a lock file
// beside a SQLite store, a lock in the database for PostgreSQL. where is the store's
// file for SQLite. A job held by another process is errJobLocked.
func lockStoreJob(ctx context.Context, st store, where, jobID string) (unlock func(), err error) {
	if l, ok := st.(jobLocker); ok {
		unlock, err := l.LockJob(ctx, jobID)
		if errors.Is(err, sluice.ErrJobHeld) {
			return nil, errJobLocked
		}
		return unlock, err
	}
	return lockJob(jobLockPath(where, jobID))
}

// findJob reads the job id from the store at path, or says that there is none.
func findJob(ctx context.Context, st sluice.Store, path, id string) (*sluice.Job, error) {
	job, err := st.Job(ctx, id)
	if errors.Is(err, sluice.ErrNotFound) {
		return nil, usageError("no job %q in %s (sluice jobs lists them)", id, path)
	}
	return job, err
}

// jobHeld reports whether a live process holds the job (runs it, works it, watches its
// batches).
func jobHeld(ctx context.Context, st store, where, id string) bool {
	if l, ok := st.(jobLocker); ok {
		held, err := l.JobHeld(ctx, id)
		return err == nil && held
	}
	path := jobLockPath(where, id)
	if _, err := os.Stat(path); err != nil {
		return false // a process that runs the job has created it
	}
	unlock, err := lockJob(path)
	if err != nil {
		return errors.Is(err, errJobLocked)
	}
	unlock()
	return false
}

// shownState is the state to show for a job: a running job that no process holds was
// stopped without a chance to say so (kill -9, a reboot, a declined confirmation).
func shownState(ctx context.Context, st store, where string, j *sluice.Job) sluice.JobState {
	if j.State == sluice.JobRunning && !jobHeld(ctx, st, where, j.ID) {
		return sluice.JobInterrupted
	}
	return j.State
}

// deadReleaser is a store whose jobs other processes may be working (PostgreSQL): only
// the leases of workers that are gone are taken back.
type deadReleaser interface {
	ReleaseDead(ctx context.Context, jobID string, now time.Time) error
	ResetBudget(ctx context.Context, jobID string, now time.Time) error
}

var _ deadReleaser = (*postgres.Store)(nil)

// releaseOrphans returns to pending the requests a crashed process left in flight, when
// this process has just taken the job's lock: every request in flight on SQLite, where
// the lock holder is the job's only worker; those of workers that are no longer alive on
// PostgreSQL, where live workers share the job.
func releaseOrphans(ctx context.Context, st store, jobID string) error {
	if d, ok := st.(deadReleaser); ok {
		if err := d.ReleaseDead(ctx, jobID, time.Now()); err != nil {
			return err
		}
		// What crashed workers committed of the budget and never spent is free again.
		return d.ResetBudget(ctx, jobID, time.Now())
	}
	return st.Release(ctx, jobID, "")
}

// storeUsage is the help of every --store flag.
const storeUsage = "the ledger: a SQLite file or a postgres:// URL (default $SLUICE_STORE or a file in the user's data directory)"

// shared reports whether st is a store that other processes may work the same jobs in.
func shared(st sluice.Store) bool {
	_, ok := st.(sluice.WorkerRegistry)
	return ok
}

// shareBudget returns the options of a run on a store whose jobs other workers share
// (PostgreSQL) with a budget: its reservations are committed in the store, so that the
// budget holds over all the job's workers (Engine.ShareBudget). done gives back what the
// run committed and did not spend; call it after the run.
func shareBudget(ctx context.Context, e *env, eng *sluice.Engine, st sluice.Store, jobID string, o jobOptions) (opts []sluice.RunOption, done func(), err error) {
	led, ok := st.(sluice.BudgetLedger)
	if !ok || (o.MaxCost <= 0 && o.MaxTokens <= 0) {
		return nil, func() {}, nil
	}
	pool, give, err := eng.ShareBudget(ctx, led, jobID)
	if err != nil {
		return nil, nil, err
	}
	return []sluice.RunOption{sluice.WithBudgetPool(pool)}, func() {
		if err := give(); err != nil {
			fmt.Fprintln(e.stderr, "warning:", err)
		}
	}, nil
}

// spoolBeside is the file beside which piped input is spooled: the SQLite store's, or for
// a PostgreSQL store the default SQLite file's place in the user's data directory (the
// spool is this machine's; workers elsewhere read the requests from the store).
func spoolBeside(e *env, flag string) (string, error) {
	loc, err := storeLocation(e, flag)
	if err != nil {
		return "", err
	}
	if loc.Kind == storeurl.SQLite {
		return loc.Path, nil
	}
	return defaultStorePath(e)
}
