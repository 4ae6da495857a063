// Package logx holds slog helpers: a handler that rate-limits repeated records, and the
// test of a client that went away.
package logx

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Defaults of RateLimit as sluice serve uses it.
const (
	// DefaultBurst is how many records with the same level and message pass per interval.
	DefaultBurst = 10
	// DefaultInterval is the interval of DefaultBurst.
	DefaultInterval = time.Minute
	// maxKeys bounds the messages tracked at once; past it, expired ones are reported and
	// forgotten, and if none has expired the oldest interval's counts are reported early.
	maxKeys = 1024
)

// Limiter is a slog.Handler that passes the first Burst records with the same level and
// message in each Interval to the next handler and drops the rest, counting them. The
// first record of that level and message after the interval, or Flush, reports the count
// as one record: the same level, the message "suppressed repeated log lines", and the
// attributes "message" (the message) and "suppressed" (how many). Handlers derived with
// WithAttrs and WithGroup share the counts. A Limiter is safe for concurrent use.
type Limiter struct {
	next slog.Handler
	st   *limitState
}

type limitState struct {
	burst    int
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[limitKey]*limitEntry
	out  slog.Handler // where reports go: the handler the Limiter was made with
}

type limitKey struct {
	level slog.Level
	msg   string
}

type limitEntry struct {
	start      time.Time
	passed     int
	suppressed int
}

var _ slog.Handler = (*Limiter)(nil)

// RateLimit returns a Limiter over next that lets burst records with the same level and
// message through per interval (DefaultBurst and DefaultInterval when not positive). now
// is the clock; nil means time.Now.
func RateLimit(next slog.Handler, burst int, interval time.Duration, now func() time.Time) *Limiter {
	if burst <= 0 {
		burst = DefaultBurst
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{next: next, st: &limitState{burst: burst, interval: interval, now: now, keys: map[limitKey]*limitEntry{}, out: next}}
}

// Enabled reports whether the next handler handles records of level.
func (l *Limiter) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

// Handle passes r on unless its level and message passed Burst times in this interval.
func (l *Limiter) Handle(ctx context.Context, r slog.Record) error {
	st := l.st
	now := st.now()
	k := limitKey{r.Level, r.Message}
	st.mu.Lock()
	var reports []slog.Record
	e := st.keys[k]
	if e != nil && now.Sub(e.start) >= st.interval {
		if rep, ok := report(k, e, now); ok {
			reports = append(reports, rep)
		}
		e = nil
	}
	if e == nil {
		if len(st.keys) >= maxKeys {
			reports = append(reports, st.sweep(now)...)
		}
		e = &limitEntry{start: now}
		st.keys[k] = e
	}
	e.passed++
	pass := e.passed <= st.burst
	if !pass {
		e.suppressed++
	}
	st.mu.Unlock()
	var errs []error
	for _, rep := range reports {
		errs = append(errs, st.out.Handle(ctx, rep))
	}
	if pass {
		errs = append(errs, l.next.Handle(ctx, r))
	}
	return errors.Join(errs...)
}

// sweep reports and forgets the entries whose interval is over, or every entry when none
// is. It is called with mu held.
func (st *limitState) sweep(now time.Time) []slog.Record {
	var reports []slog.Record
	expired := 0
	for _, e := range st.keys {
		if now.Sub(e.start) >= st.interval {
			expired++
		}
	}
	for k, e := range st.keys {
		if expired == 0 || now.Sub(e.start) >= st.interval {
			if rep, ok := report(k, e, now); ok {
				reports = append(reports, rep)
			}
			delete(st.keys, k)
		}
	}
	return reports
}

// report is the record that tells of e's suppressed records, if any.
func report(k limitKey, e *limitEntry, now time.Time) (slog.Record, bool) {
	if e.suppressed == 0 {
		return slog.Record{}, false
	}
	r := slog.NewRecord(now, k.level, "suppressed repeated log lines", 0)
	r.AddAttrs(slog.String("message", k.msg), slog.Int("suppressed", e.suppressed))
	return r, true
}

// Flush reports the records suppressed so far and forgets the counts: call it before the
// program ends.
func (l *Limiter) Flush(ctx context.Context) error {
	st := l.st
	now := st.now()
	st.mu.Lock()
	var reports []slog.Record
	for k, e := range st.keys {
		if rep, ok := report(k, e, now); ok {
			reports = append(reports, rep)
		}
	}
	clear(st.keys)
	st.mu.Unlock()
	var errs []error
	for _, rep := range reports {
		errs = append(errs, st.out.Handle(ctx, rep))
	}
	return errors.Join(errs...)
}

// WithAttrs returns a Limiter over next.WithAttrs(attrs) that shares l's counts.
func (l *Limiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Limiter{next: l.next.WithAttrs(attrs), st: l.st}
}

// WithGroup returns a Limiter over next.WithGroup(name) that shares l's counts.
func (l *Limiter) WithGroup(name string) slog.Handler {
	return &Limiter{next: l.next.WithGroup(name), st: l.st}
}

// ClientGone reports whether err means that the client went away or gave up: its
// request's context was cancelled, its connection was reset or closed, or its request
// body ended early. Such errors are the client's doing and deserve no more than a debug
// line.
func ClientGone(err error) bool {
	return errors.Is(err, context.Canceled) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed)
}
