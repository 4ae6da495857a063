package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/ids"
)

// maxUser bounds the user field kept in usage.
const maxUser = 128

// usageBook adds up online usage per key, user and day, for the ledger and Stats.
type usageBook struct {
	now     func() time.Time
	session string // this gateway's run, in the ledger's row ids

	mu   sync.Mutex
	rows map[usageKey]*usageRow
}

type usageKey struct {
	owner, user string
	day         time.Time
}

type usageRow struct {
	id      string
	keyName string
	usage   sluice.Usage
	cost    float64
	// requests counts the requests answered, cacheHits those answered from the cache.
	requests, cacheHits int64
	dirty               bool
}

func newUsageBook(cfg Config) *usageBook {
	return &usageBook{now: cfg.Now, session: ids.Hex(8), rows: map[usageKey]*usageRow{}}
}

// add counts one answered request of key k for user.
func (b *usageBook) add(k *clientKey, user, _ string, u sluice.Usage, cost float64, cacheHit bool) {
	if len(user) > maxUser {
		user = user[:maxUser]
	}
	y, m, d := b.now().UTC().Date()
	key := usageKey{owner: k.Hash, user: user, day: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
	b.mu.Lock()
	defer b.mu.Unlock()
	row := b.rows[key]
	if row == nil {
		// The user was read from the request body without a copy: keep a copy, not the body.
		key.user = strings.Clone(user)
		sum := sha256.Sum256([]byte(key.owner + "\x00" + key.user + "\x00" + key.day.Format(time.DateOnly)))
		row = &usageRow{id: "online-" + b.session + "-" + hex.EncodeToString(sum[:8]), keyName: k.Name}
		b.rows[key] = row
	}
	row.usage = row.usage.Add(u)
	row.cost += cost
	row.requests++
	if cacheHit {
		row.cacheHits++
	}
	row.dirty = true
}

// flush writes the rows that changed since the last flush.
func (b *usageBook) flush(ctx context.Context, st UsageStore) error {
	type pending struct {
		key usageKey
		row usageRow
	}
	var todo []pending
	b.mu.Lock()
	for k, r := range b.rows {
		if r.dirty {
			todo = append(todo, pending{k, *r})
			r.dirty = false
		}
	}
	b.mu.Unlock()
	var errs []error
	for _, p := range todo {
		err := st.SaveUsage(ctx, p.row.id, p.key.owner, p.row.keyName, p.key.user, p.key.day, p.row.usage, p.row.cost,
			p.row.requests, p.row.cacheHits)
		if err != nil {
			b.mu.Lock()
			b.rows[p.key].dirty = true // try again next time
			b.mu.Unlock()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeUsage writes usage every UsageInterval until Close.
func (g *Gateway) writeUsage() {
	t := time.NewTicker(g.cfg.UsageInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			if err := g.usage.flush(context.Background(), g.cfg.Usage); err != nil {
				g.cfg.Logger.Error("gateway: record usage", "err", err)
			}
		}
	}
}

// KeyUsage is one key's online usage since the Gateway started, for one user.
type KeyUsage struct {
	Key       string // the key's name
	User      string
	Day       time.Time
	Usage     sluice.Usage
	CostUSD   float64
	Requests  int64
	CacheHits int64
}

// Usage returns the online usage since the Gateway started, per key, user and day.
func (g *Gateway) Usage() []KeyUsage {
	g.usage.mu.Lock()
	defer g.usage.mu.Unlock()
	out := make([]KeyUsage, 0, len(g.usage.rows))
	for k, r := range g.usage.rows {
		out = append(out, KeyUsage{Key: r.keyName, User: k.user, Day: k.day, Usage: r.usage, CostUSD: r.cost,
			Requests: r.requests, CacheHits: r.cacheHits})
	}
	return out
}
