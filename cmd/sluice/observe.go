package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/metrics"
	"github.com/sluice-llm/sluice/report"
	"github.com/sluice-llm/sluice/timeline"
)

// metricsGrace bounds how long a scrape under way may finish when a command ends.
const metricsGrace = 2 * time.Second

// observeFlags are the flags of the commands that run an engine for a while: --metrics-addr
// and --log-level.
type observeFlags struct {
	metricsAddr string
	logLevel    slog.Level
	registered  bool // the flags exist on the command: logLevel has its default
	streamIdle  time.Duration
	// metrics, when set, are served already (by a worker, for all its jobs): newEngine
	// uses them rather than serving its own.
	metrics *metrics.Metrics
}

// level is --log-level, warn for a command without it.
func (f *observeFlags) level() slog.Level {
	if !f.registered {
		return slog.LevelWarn
	}
	return f.logLevel
}

// registerObserve adds --metrics-addr, --log-level, --stream and --stream-idle-timeout.
func (f *runFlags) registerObserve(fs *pflag.FlagSet) {
	f.observe.register(fs)
	fs.BoolVar(&f.opts.Stream, "stream", false, `send requests with "stream": true (a body's own "stream" is kept), to measure the time to first token; the output is the same`)
	fs.DurationVar(&f.observe.streamIdle, "stream-idle-timeout", 0, "cut off a streamed answer that sends nothing for this long and retry it (0: never; --timeout still bounds the whole request)")
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

// streamIdle is the stream idle timeout, 0 when none.
func (o jobOptions) streamIdle() (time.Duration, error) {
	if o.StreamIdleTimeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(o.StreamIdleTimeout)
	if err != nil || d < 0 {
		return 0, usageError("--stream-idle-timeout must be a duration that is not negative, got %q", o.StreamIdleTimeout)
	}
	return d, nil
}

// observers is the Observer of a run's engine: a new f.speeds for the report, and m when
// metrics are served.
func (f *runFlags) observers(m *metrics.Metrics) sluice.Observer {
	f.speeds = &metrics.Speeds{}
	if m == nil {
		return f.speeds
	}
	return timeline.Join(m, f.speeds)
}

// addSpeeds adds the run's time to first token and output speed to the report.
func addSpeeds(r *report.Job, s *metrics.Speeds) {
	if s == nil {
		return
	}
	if p, ok := s.TTFT(); ok {
		r.TTFTMS = (*report.Percentiles)(&p)
	}
	if p, ok := s.TokensPerSecond(); ok {
		r.TokensPerSecond = (*report.Percentiles)(&p)
	}
}

// printSpeeds prints the lines of addSpeeds.
func printSpeeds(w io.Writer, r *report.Job) {
	if p := r.TTFTMS; p != nil {
		fmt.Fprintf(w, "  time to first token\tp50 %s, p95 %s, p99 %s\n", fmtMS(p.P50), fmtMS(p.P95), fmtMS(p.P99))
	}
	if p := r.TokensPerSecond; p != nil {
		fmt.Fprintf(w, "  output tokens/s\tp50 %.1f, p95 %.1f, p99 %.1f\n", p.P50, p.P95, p.P99)
	}
}
