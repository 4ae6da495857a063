package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/sluice-llm/sluice/metrics"
)

// metricsGrace bounds how long a scrape under way may finish when a command ends.
const metricsGrace = 2 * time.Second

// observeFlags are the flags of the commands that run an engine for a while: --metrics-addr
// and --log-level.
type observeFlags struct {
	metricsAddr string
	logLevel    slog.Level
	registered  bool // the flags exist on the command: logLevel has its default
}

// level is --log-level, warn for a command without it.
func (f *observeFlags) level() slog.Level {
	if !f.registered {
		return slog.LevelWarn
	}
	return f.logLevel
}

func (f *observeFlags) register(fs *pflag.FlagSet) {
	f.registered = true
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics while running (such as 127.0.0.1:9464)")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelWarn, "the least level logged: debug (every attempt), info (every request that failed), warn or error")
}

// startMetrics serves Prometheus metrics on addr until stop is called. With addr "" it
// serves nothing and returns a nil Metrics (set it as Config.Observer only when not nil).
func startMetrics(e *env, addr string) (m *metrics.Metrics, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	m = metrics.New()
	srv, err := metrics.Start(addr, m)
	if err != nil {
		return nil, nil, usageError("--metrics-addr: %v", err)
	}
	fmt.Fprintf(e.stderr, "metrics on http://%s%s\n", srv.Addr(), metrics.Path)
	return m, func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsGrace)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			fmt.Fprintln(e.stderr, "warning:", err)
		}
	}, nil
}

// withMetrics serves m at /metrics in front of h.
func withMetrics(h http.Handler, m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+metrics.Path, m.Handler())
	mux.Handle("/", h)
	return mux
}

// logger is the logger of the commands' engines, in the format of --log-format.
func (e *env) logger(level slog.Level) *slog.Logger {
	return slog.New(e.logHandler(level))
}

// logHandler writes records of level and above to stderr, as text or JSON (--log-format).
func (e *env) logHandler(level slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if e.logFormat == logJSON {
		return slog.NewJSONHandler(e.stderr, opts)
	}
	return slog.NewTextHandler(e.stderr, opts)
}
