package http_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
)

// errCrashed is what a crashed server's writes and sends get.
var errCrashed = errors.New("the process is dead")

// crashStore is a store that stops taking writes when the process "dies": whatever was
// not written by then is lost, as with SIGKILL.
type crashStore struct {
	*sqlite.Store
	dead *atomic.Bool
}

func (c crashStore) check() error {
	if c.dead.Load() {
		return errCrashed
	}
	return nil
}

func (c crashStore) CreateJob(ctx context.Context, job *sluice.Job) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.CreateJob(ctx, job)
}

func (c crashStore) UpdateJob(ctx context.Context, job *sluice.Job) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.UpdateJob(ctx, job)
}

func (c crashStore) AddRequests(ctx context.Context, id string, reqs []sluice.NewRequest) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.AddRequests(ctx, id, reqs)
}

func (c crashStore) Claim(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return c.Store.Claim(ctx, p)
}

func (c crashStore) Complete(ctx context.Context, id, owner string, outcomes []sluice.Outcome) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.Complete(ctx, id, owner, outcomes)
}

func (c crashStore) Renew(ctx context.Context, p sluice.RenewParams) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.Renew(ctx, p)
}

func (c crashStore) Release(ctx context.Context, id, owner string) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.Release(ctx, id, owner)
}

func (c crashStore) SaveObject(ctx context.Context, kind, id, owner, status string, doc []byte) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.SaveObject(ctx, kind, id, owner, status, doc)
}

func (c crashStore) DeleteObject(ctx context.Context, kind, id, owner string) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.DeleteObject(ctx, kind, id, owner)
}

func (c crashStore) SaveUsage(ctx context.Context, id, owner, keyName, user string, created time.Time, u sluice.Usage, cost float64,
	requests, cacheHits int64) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.SaveUsage(ctx, id, owner, keyName, user, created, u, cost, requests, cacheHits)
}

// crashTransport stands between a server and its upstream. Once the process is dead it
// sends nothing new, and the answers of requests already sent are generated (and
// billed) by the upstream but never reach the process.
type crashTransport struct {
	next http.RoundTripper
	dead *atomic.Bool
}

func (c crashTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.dead.Load() {
		return nil, errCrashed
	}
	// The upstream finishes what it was sent whatever happens to the client.
	resp, err := c.next.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
	if err == nil && c.dead.Load() {
		resp.Body.Close()
		return nil, errCrashed
	}
	return resp, err
}

func (c crashStore) SaveReservation(ctx context.Context, session, owner string, period time.Time,
	priorTokens int64, priorCost float64, tokens int64, cost float64) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.SaveReservation(ctx, session, owner, period, priorTokens, priorCost, tokens, cost)
}

func (c crashStore) SettleReservation(ctx context.Context, session, owner string, period time.Time, tokens int64, cost float64) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.SettleReservation(ctx, session, owner, period, tokens, cost)
}

func (c crashStore) DeleteReservations(ctx context.Context, session string) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.DeleteReservations(ctx, session)
}
