// Package mock has fakes of sluice's interfaces made of function fields, in the manner of
// litestream's mock package: a test sets the functions it needs, and a call to one it did
// not set panics, naming it. Wrap starts from a real Store so that a test overrides one
// method, say to inject a failure or a cancel at one store call.
package mock

import (
	"context"

	"github.com/sluice-llm/sluice"
)

var (
	_ sluice.Store    = (*Store)(nil)
	_ sluice.Upstream = (*Upstream)(nil)
)

// Store is a sluice.Store whose methods call its function fields.
type Store struct {
	CreateJobFunc   func(ctx context.Context, job *sluice.Job) error
	JobFunc         func(ctx context.Context, id string) (*sluice.Job, error)
	JobsFunc        func(ctx context.Context, fingerprint string) ([]*sluice.Job, error)
	UpdateJobFunc   func(ctx context.Context, job *sluice.Job) error
	AddRequestsFunc func(ctx context.Context, jobID string, reqs []sluice.NewRequest) error
	ClaimFunc       func(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error)
	CompleteFunc    func(ctx context.Context, jobID, owner string, outcomes []sluice.Outcome) error
	RenewFunc       func(ctx context.Context, p sluice.RenewParams) error
	ReleaseFunc     func(ctx context.Context, jobID, owner string) error
	ResultsFunc     func(ctx context.Context, jobID string, after int64, limit int, fn func(*sluice.Result) error) error
	StatsFunc       func(ctx context.Context, jobID string) (*sluice.Stats, error)
	UnfinishedFunc  func(ctx context.Context, jobID string) (pending, inFlight bool, err error)
	CloseFunc       func() error
}

// Wrap returns a Store whose every function calls st: set a field to override that one
// method.
func Wrap(st sluice.Store) *Store {
	return &Store{
		CreateJobFunc:   st.CreateJob,
		JobFunc:         st.Job,
		JobsFunc:        st.Jobs,
		UpdateJobFunc:   st.UpdateJob,
		AddRequestsFunc: st.AddRequests,
		ClaimFunc:       st.Claim,
		CompleteFunc:    st.Complete,
		RenewFunc:       st.Renew,
		ReleaseFunc:     st.Release,
		ResultsFunc:     st.Results,
		StatsFunc:       st.Stats,
		UnfinishedFunc:  st.Unfinished,
		CloseFunc:       st.Close,
	}
}

// CreateJob calls CreateJobFunc.
func (s *Store) CreateJob(ctx context.Context, job *sluice.Job) error {
	if s.CreateJobFunc == nil {
		missing("CreateJob")
	}
	return s.CreateJobFunc(ctx, job)
}

// Job calls JobFunc.
func (s *Store) Job(ctx context.Context, id string) (*sluice.Job, error) {
	if s.JobFunc == nil {
		missing("Job")
	}
	return s.JobFunc(ctx, id)
}

// Jobs calls JobsFunc.
func (s *Store) Jobs(ctx context.Context, fingerprint string) ([]*sluice.Job, error) {
	if s.JobsFunc == nil {
		missing("Jobs")
	}
	return s.JobsFunc(ctx, fingerprint)
}

// UpdateJob calls UpdateJobFunc.
func (s *Store) UpdateJob(ctx context.Context, job *sluice.Job) error {
	if s.UpdateJobFunc == nil {
		missing("UpdateJob")
	}
	return s.UpdateJobFunc(ctx, job)
}

// AddRequests calls AddRequestsFunc.
func (s *Store) AddRequests(ctx context.Context, jobID string, reqs []sluice.NewRequest) error {
	if s.AddRequestsFunc == nil {
		missing("AddRequests")
	}
	return s.AddRequestsFunc(ctx, jobID, reqs)
}

// Claim calls ClaimFunc.
func (s *Store) Claim(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
	if s.ClaimFunc == nil {
		missing("Claim")
	}
	return s.ClaimFunc(ctx, p)
}

// Complete calls CompleteFunc.
func (s *Store) Complete(ctx context.Context, jobID, owner string, outcomes []sluice.Outcome) error {
	if s.CompleteFunc == nil {
		missing("Complete")
	}
	return s.CompleteFunc(ctx, jobID, owner, outcomes)
}

// Renew calls RenewFunc.
func (s *Store) Renew(ctx context.Context, p sluice.RenewParams) error {
	if s.RenewFunc == nil {
		missing("Renew")
	}
	return s.RenewFunc(ctx, p)
}

// Release calls ReleaseFunc.
func (s *Store) Release(ctx context.Context, jobID, owner string) error {
	if s.ReleaseFunc == nil {
		missing("Release")
	}
	return s.ReleaseFunc(ctx, jobID, owner)
}

// Results calls ResultsFunc.
func (s *Store) Results(ctx context.Context, jobID string, after int64, limit int, fn func(*sluice.Result) error) error {
	if s.ResultsFunc == nil {
		missing("Results")
	}
	return s.ResultsFunc(ctx, jobID, after, limit, fn)
}

// Stats calls StatsFunc.
func (s *Store) Stats(ctx context.Context, jobID string) (*sluice.Stats, error) {
	if s.StatsFunc == nil {
		missing("Stats")
	}
	return s.StatsFunc(ctx, jobID)
}

// Unfinished calls UnfinishedFunc.
func (s *Store) Unfinished(ctx context.Context, jobID string) (pending, inFlight bool, err error) {
	if s.UnfinishedFunc == nil {
		missing("Unfinished")
	}
	return s.UnfinishedFunc(ctx, jobID)
}

// Close calls CloseFunc; a nil CloseFunc closes nothing.
func (s *Store) Close() error {
	if s.CloseFunc == nil {
		return nil
	}
	return s.CloseFunc()
}

// Upstream is a sluice.Upstream (and a sluice.ModelLister) whose methods call its
// function fields.
type Upstream struct {
	DoFunc     func(ctx context.Context, req *sluice.Request) (*sluice.Response, error)
	ModelsFunc func(ctx context.Context) ([]string, error)
	// URL is what BaseURL returns ("http://mock.test/v1" when empty).
	URL string
}

// Do calls DoFunc.
func (u *Upstream) Do(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	if u.DoFunc == nil {
		missing("Do")
	}
	return u.DoFunc(ctx, req)
}

// Models calls ModelsFunc.
func (u *Upstream) Models(ctx context.Context) ([]string, error) {
	if u.ModelsFunc == nil {
		missing("Models")
	}
	return u.ModelsFunc(ctx)
}

// BaseURL returns URL.
func (u *Upstream) BaseURL() string {
	if u.URL == "" {
		return "http://mock.test/v1"
	}
	return u.URL
}

// missing panics naming a method the test did not set.
func missing(name string) {
	panic("mock: " + name + " called but its func is not set")
}
