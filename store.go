package sluice

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// JobState is the state of a job: one run of one input file, possibly resumed many times.
type JobState string

// Job states.
const (
	JobRunning     JobState = "running"          // created, or being run; not every request is final
	JobInterrupted JobState = "interrupted"      // stopped by its user or a crash; resumable
	JobCancelled   JobState = "cancelled"        // its batches cancelled at the provider (sluice batch cancel); resumed only when asked
	JobAborted     JobState = "aborted"          // stopped by a fatal error (rejected key, unknown model); resumable once fixed
	JobBudget      JobState = "budget_exhausted" // stopped before its budget would be crossed; resumable with a higher one
	JobFailed      JobState = "failed"           // stopped by sluice's own failure (ledger, input); resumable once fixed
	JobCompleted   JobState = "completed"        // every request is final (done or failed)
)

// RequestState is the state of one request in a job's ledger.
type RequestState string

// Request states.
const (
	StatePending  RequestState = "pending"   // waiting to be claimed
	StateInFlight RequestState = "in_flight" // claimed under a lease by a worker
	StateDone     RequestState = "done"      // final: the upstream answered 2xx
	StateFailed   RequestState = "failed"    // final: a non-retryable error, or attempts used up
)

// Final reports whether s is a final state.
func (s RequestState) Final() bool { return s == StateDone || s == StateFailed }

// Job is one run of one input file through one upstream.
type Job struct {
	ID        string
	State     JobState
	CreatedAt time.Time
	UpdatedAt time.Time
	// Input is the input file's path as given; Fingerprint identifies its content so a
	// re-run of the same command finds the same job.
	Input       string
	Fingerprint string
	// Options is the run's settings (no secrets), opaque to the store, so that a resume
	// runs with the same settings.
	Options json.RawMessage
	// Ingested is how many input lines are in the ledger; IngestDone is set once the whole
	// input is.
	Ingested   int64
	IngestDone bool
	// Elapsed is the wall time spent running the job, summed over its runs.
	Elapsed time.Duration
	// Error says why the job is aborted or interrupted.
	Error string
}

// NewRequest is one input line to be added to a job's ledger. A line that failed to parse
// has Err set and is recorded as failed at once, so it gets an output line.
type NewRequest struct {
	Line     int64 // 1-based line number: the request's key within its job
	Request  Request
	Estimate Estimate
	Err      *LineError
}

// Item is a request claimed from the ledger by a worker.
type Item struct {
	Line     int64
	Request  Request
	Estimate Estimate
	// Attempts is how many attempts were spent on the request before this claim, and
	// Throttled how many of them were answered 429.
	Attempts  int
	Throttled int
}

// Outcome records what happened to a claimed request. State StatePending releases the
// request back to the ledger (its attempts as given, so an interrupted attempt is not
// spent); StateInFlight keeps the lease and records progress (attempts, last error);
// StateDone and StateFailed are final.
type Outcome struct {
	Line     int64
	State    RequestState
	Attempts int
	// Throttled is how many of the attempts were answered 429.
	Throttled int
	// StatusCode, RequestID and Body are the last HTTP answer (0, "", nil when there was none).
	StatusCode int
	RequestID  string
	Body       json.RawMessage
	// ErrorCode and ErrorMessage describe the last failure without an HTTP answer, or a
	// request that was never sent.
	ErrorCode    string
	ErrorMessage string
	Usage        Usage
	// Latency is the latency of the last attempt.
	Latency    time.Duration
	FinishedAt time.Time
}

// Result is a final request as the output file needs it.
type Result struct {
	Line         int64
	CustomID     string
	State        RequestState
	StatusCode   int
	RequestID    string
	Body         json.RawMessage
	ErrorCode    string
	ErrorMessage string
	// Usage is the token usage of the request's last answer, as the upstream reported it
	// (zero when there was none).
	Usage Usage
}

// ModelStats sums a job's requests that used one model.
type ModelStats struct {
	Model    string
	Requests int64 // requests with an answer carrying usage
	Usage    Usage
}

// Stats summarises a job's ledger.
type Stats struct {
	Total     int64 // lines in the ledger
	Pending   int64
	InFlight  int64
	Done      int64
	Failed    int64
	Attempts  int64 // attempts spent, over all requests
	Retries   int64 // attempts beyond each request's first
	Throttled int64 // answers with status 429
	// Repaid counts requests sent again after a run left them in flight without recording
	// their outcome (it was killed, or its ledger failed): their first answer may have
	// been paid for. At most the concurrency per crash.
	Repaid  int64
	Usage   Usage
	ByModel []ModelStats
	// Latency percentiles of the final attempts of done requests.
	LatencyP50, LatencyP95, LatencyP99 time.Duration
	// FailuresByCode counts failed requests by status code ("429", "400") or error code.
	FailuresByCode map[string]int64
}

// Store is a durable ledger of jobs and their requests. Workers take requests by claiming
// them under a lease; a lease that expires returns its requests to pending, so any number
// of workers, on any number of machines, can share one job. Implementations must be safe
// for concurrent use.
//
// Store is the union of the smaller interfaces its consumers use: the catalogue of jobs
// (Catalog), the ledger a run works through (Ledger) and the final results an output file
// is written from (ResultReader).
type Store interface {
	Catalog
	Ledger
	ResultReader
	// Close releases the store's resources.
	Close() error
}

// Catalog keeps the jobs themselves: what the commands list, show, resume and delete.
type Catalog interface {
	// CreateJob stores a new job; job.ID must be set and unique.
	CreateJob(ctx context.Context, job *Job) error
	// Job returns the job with the given id, or ErrNotFound.
	Job(ctx context.Context, id string) (*Job, error)
	// Jobs lists jobs, newest first. A non-empty fingerprint lists only jobs with it.
	Jobs(ctx context.Context, fingerprint string) ([]*Job, error)
	// UpdateJob saves the job's State, Error, Elapsed, Ingested and IngestDone.
	UpdateJob(ctx context.Context, job *Job) error
}

// Ledger is a job's requests as a run works through them: ingest, claims under a lease,
// outcomes, and the counts that say when the job is finished.
type Ledger interface {
	// AddRequests adds lines to a job's ledger in one transaction, and advances the job's
	// Ingested count to the last line. Lines already present are skipped, so adding the
	// same lines again is harmless. A valid line whose custom_id is already in the job is
	// stored as failed with code CodeDuplicateID, naming the line that has it.
	AddRequests(ctx context.Context, jobID string, reqs []NewRequest) error
	// Claim takes up to p.Max pending requests (and requests whose lease expired by
	// p.Now) in line order, marks them in flight under p.Owner until p.Now+p.Lease, and
	// returns them.
	Claim(ctx context.Context, p ClaimParams) ([]Item, error)
	// Complete records outcomes for requests claimed by owner in one transaction.
	// Outcomes for requests no longer leased by owner are ignored, so a worker whose
	// lease expired cannot overwrite another's result.
	Complete(ctx context.Context, jobID, owner string, outcomes []Outcome) error
	// Renew extends every lease p.Owner holds on the job to p.Now+p.Lease.
	Renew(ctx context.Context, p RenewParams) error
	// Release returns requests in flight to pending without spending an attempt: those of
	// owner, or of every owner when owner is "".
	Release(ctx context.Context, jobID, owner string) error
	// Stats summarises the job's ledger.
	Stats(ctx context.Context, jobID string) (*Stats, error)
	// Unfinished reports whether the job has a pending request and whether it has one in
	// flight (Stats' Pending and InFlight, not zero), at the cost of an indexed look-up
	// or two rather than Stats' scans of the whole job: a run asks it when it runs dry.
	Unfinished(ctx context.Context, jobID string) (pending, inFlight bool, err error)
}

// ClaimParams are the parameters of Ledger.Claim.
type ClaimParams struct {
	JobID string
	// Owner names the worker the requests are leased to.
	Owner string
	// Max is how many requests to take at most; none when it is not positive.
	Max int
	// Lease is how long the claim holds the requests, from Now.
	Lease time.Duration
	// Now is the time of the claim: leases that expired by Now are taken again, and the
	// new ones run until Now+Lease. The zero value means the store's clock, which is what
	// workers on many machines should share; tests set it to need no sleeps.
	Now time.Time
}

// RenewParams are the parameters of Ledger.Renew.
type RenewParams struct {
	JobID string
	Owner string
	// Lease is how long the leases run from Now.
	Lease time.Duration
	// Now is the time of the renewal; the zero value means the store's clock.
	Now time.Time
}

// ResultReader reads a job's final requests, as its output file needs them.
type ResultReader interface {
	// Results calls fn for every final request with Line > after, in line order, until fn
	// returns an error or limit results were given (limit <= 0: no limit).
	Results(ctx context.Context, jobID string, after int64, limit int, fn func(*Result) error) error
}

// ErrJobHeld is the error, wrapped, of a store's job lock (see the postgres store's
// LockJob) that another process holds.
var ErrJobHeld = errors.New("job held by another process")

// RateStore keeps what runs learned of each upstream's speed (the rate limits its headers
// gave, the median latency), by base URL, for later runs to plan with. Stores implement
// it optionally.
type RateStore interface {
	// SaveRate records an observation of the upstream at baseURL.
	SaveRate(ctx context.Context, baseURL string, o RateObservation) error
	// Rate returns what was last learned of the upstream at baseURL; ok is false when
	// nothing was.
	Rate(ctx context.Context, baseURL string) (o RateObservation, ok bool, err error)
}

// HistoryStore sums the usage of every job's answers by model, for estimates to learn
// the typical output of each model from. Stores implement it optionally.
type HistoryStore interface {
	ModelHistory(ctx context.Context) (map[string]ModelStats, error)
}

// JobDeleter deletes a job and its ledger. Stores implement it optionally.
type JobDeleter interface {
	// DeleteJob removes the job and all its requests, or returns ErrNotFound.
	DeleteJob(ctx context.Context, id string) error
}

// FailedRetrier is a Store that can send a finished job's failed requests again, as a
// user does after a provider's outage. Stores implement it optionally.
type FailedRetrier interface {
	// RetryFailed returns the job's failed requests that were sent to pending, with no
	// attempts spent, sets the job running, and returns how many there were. Done
	// requests, and lines that were never sent (invalid, duplicate custom_id), are
	// untouched.
	RetryFailed(ctx context.Context, jobID string) (int64, error)
}

// Migration is one schema version a store has had applied.
type Migration struct {
	Version   int
	Name      string // the migration's file name without .sql: 0004_worker
	AppliedAt time.Time
}
