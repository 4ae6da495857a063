package sluice

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// WorkerRegistry is a store that knows the live workers of each job, so that workers on
// many machines (sluice run and sluice worker on one PostgreSQL store) split the job's
// rate limits between them, and start from the limits the others learned. Stores
// implement it optionally.
type WorkerRegistry interface {
	// Heartbeat records that owner works the job until now+ttl and returns how many
	// workers are live at now, owner included.
	Heartbeat(ctx context.Context, jobID, owner string, now time.Time, ttl time.Duration) (live int, err error)
	// Leave removes owner from the job's workers.
	Leave(ctx context.Context, jobID, owner string) error
	// PublishLimits records the rate limits (per minute) a worker learned from the
	// upstream's headers; 0 leaves a limit as it was.
	PublishLimits(ctx context.Context, jobID string, rpm, tpm float64) error
	// SharedLimits returns the limits the job's workers published.
	SharedLimits(ctx context.Context, jobID string) (rpm, tpm float64, err error)
}

// DefaultHeartbeat is how often a worker that joined a job (Engine.Join) says it is
// alive; it counts as gone after five heartbeats missed (a busy machine may miss a few).
const DefaultHeartbeat = 2 * time.Second

// Join makes the Engine one of the live workers of job in reg until leave is called:
// it heartbeats every interval (DefaultHeartbeat when 0), takes its share of the rate
// limits (given, or learned from the upstream's headers) as one of the job's live
// workers, so that n workers together keep to the limits one would, starts from the
// limits the job's workers learned before it, and publishes what it learns. An Engine
// joins one job at a time. leave stops the heartbeats, waits for them to end and removes
// the worker from the job.
func (e *Engine) Join(ctx context.Context, reg WorkerRegistry, jobID string, interval time.Duration) (leave func(), err error) {
	if interval <= 0 {
		interval = DefaultHeartbeat
	}
	ttl := 5 * interval
	rpm, tpm, err := reg.SharedLimits(ctx, jobID)
	if err != nil {
		return nil, err
	}
	e.lim.seed(e.now(), rpm, tpm)
	beat := func(ctx context.Context) error {
		live, err := reg.Heartbeat(ctx, jobID, e.cfg.Owner, e.now(), ttl)
		if err != nil {
			return err
		}
		e.lim.setWorkers(live)
		if rpm, tpm, ok := e.lim.learned(); ok {
			return reg.PublishLimits(ctx, jobID, rpm, tpm)
		}
		return nil
	}
	if err := beat(ctx); err != nil {
		return nil, err
	}
	bg := context.WithoutCancel(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := beat(bg); err != nil && !errors.Is(err, context.Canceled) {
					e.cfg.Logger.Warn("heartbeat", "job", jobID, "err", err)
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			if err := reg.Leave(bg, jobID, e.cfg.Owner); err != nil {
				e.cfg.Logger.Warn("leave job", "job", jobID, "err", err)
			}
			e.lim.setWorkers(1)
		})
	}, nil
}

// Owner is the name of the Engine's worker in the ledger (Config.Owner).
func (e *Engine) Owner() string { return e.cfg.Owner }

// setWorkers sets how many live workers share the limits: each request then takes that
// many of the job's requests and tokens from the buckets, so this worker keeps to its
// share of them.
func (l *limiter) setWorkers(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.workers = float64(max(n, 1))
}

// reqWeight is what one request takes from the request bucket: the number of live
// workers when the bucket holds a limit shared with them (a given RPM, or one learned
// from the headers), 1 when it holds the rate this worker found by itself (AIMD), which
// is its own share already.
func (l *limiter) reqWeight() float64 {
	if l.workers <= 1 || !l.learnedReq && (l.maxRPM == 0 || l.aimdRate > 0) {
		return 1
	}
	return l.workers
}

// tokWeight is what one token takes from the token bucket (see reqWeight).
func (l *limiter) tokWeight() float64 {
	if l.workers <= 1 || !l.learnedTok && l.maxTPM == 0 {
		return 1
	}
	return l.workers
}

// learned returns the limits learned from the upstream's headers, per minute, as the
// buckets hold them (with learnedSafety applied); ok is false when none was.
func (l *limiter) learned() (rpm, tpm float64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.learnedReq {
		rpm = l.req.rate * 60
	}
	if l.learnedTok {
		tpm = l.tok.rate * 60
	}
	return rpm, tpm, l.learnedReq || l.learnedTok
}

// seed starts the limiter from limits other workers learned (per minute, as learned
// returns them; 0: none), as though this worker had read them from the headers itself.
func (l *limiter) seed(now time.Time, rpm, tpm float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rpm > 0 && !l.learnedReq {
		if l.maxRPM > 0 {
			rpm = min(rpm, l.maxRPM)
		}
		l.req.set(now, rpm/60, rpm/60)
		l.learnedReq = true
	}
	if tpm > 0 && !l.learnedTok {
		if l.maxTPM > 0 {
			tpm = min(tpm, l.maxTPM)
		}
		l.tok.set(now, tpm/60, tpm/60)
		l.learnedTok = true
	}
	if l.learnedReq || l.learnedTok {
		l.window = float64(l.maxWindow)
		l.aimdRate = 0
	}
}

// Spend is an amount of a budget: dollars and tokens.
type Spend struct {
	Cost   float64
	Tokens int64
}

// BudgetLedger is a store that keeps what a job's workers have committed of its budget,
// so that --max-cost and --max-tokens hold over all of them. Stores implement it
// optionally.
type BudgetLedger interface {
	// ReserveBudget commits add more of the job's budget, starting from base when nothing
	// is committed yet, if the total stays within limit; ok is false, and nothing is
	// committed, when it would not.
	ReserveBudget(ctx context.Context, jobID string, base, add Spend, limit Budget) (ok bool, err error)
	// ReturnBudget gives back what a worker committed and did not spend.
	ReturnBudget(ctx context.Context, jobID string, give Spend) error
}

// errBudgetShared refuses a reservation the job's other workers leave no room for.
var errBudgetShared = errors.New("the job's workers have committed its budget")

// ShareBudget returns a BudgetPool for a run of job (WithBudgetPool) that keeps to the
// Engine's Config.Budget together with the job's other workers: it starts from what the
// job's ledger says was spent, and before its reservations pass what it has committed
// in led, it commits a twentieth of the budget more there, which fails, and stops the
// run on its budget, when the workers together would pass the cap. So n workers spend at
// most the cap; a worker that crashes leaves what it committed and did not spend
// committed until the job's next run resets it. done gives back, after the run, what
// was committed and not spent.
func (e *Engine) ShareBudget(ctx context.Context, led BudgetLedger, jobID string) (pool *BudgetPool, done func() error, err error) {
	stats, err := e.store.Stats(ctx, jobID)
	if err != nil {
		return nil, nil, fmt.Errorf("share budget: %w", err)
	}
	r := &Run{e: e}
	base := r.priorSpending(stats)
	pool = NewBudgetPool(e.cfg.Budget, e.cfg.Cost, base.cost, base.tokens)
	var mu sync.Mutex
	committed := Spend{Cost: base.cost, Tokens: base.tokens}
	limit := e.cfg.Budget
	pool.SetJournal(func(cost float64, tokens int64) error {
		mu.Lock()
		defer mu.Unlock()
		add := Spend{Cost: max(cost-committed.Cost, 0), Tokens: max(tokens-committed.Tokens, 0)}
		ok, err := led.ReserveBudget(context.WithoutCancel(ctx), jobID,
			Spend{Cost: base.cost, Tokens: base.tokens}, add, limit)
		if err != nil {
			return err
		}
		if !ok {
			return errBudgetShared
		}
		committed.Cost += add.Cost
		committed.Tokens += add.Tokens
		return nil
	})
	done = func() error {
		mu.Lock()
		defer mu.Unlock()
		cost, tokens := pool.Spent()
		give := Spend{Cost: max(committed.Cost-cost, 0), Tokens: max(committed.Tokens-tokens, 0)}
		if give == (Spend{}) {
			return nil
		}
		committed.Cost -= give.Cost
		committed.Tokens -= give.Tokens
		return led.ReturnBudget(context.WithoutCancel(ctx), jobID, give)
	}
	return pool, done, nil
}
