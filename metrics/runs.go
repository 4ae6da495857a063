package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-llm/sluice"
)

// Progresser is what a gauge reads at scrape time: a *sluice.Run, say.
type Progresser interface {
	Progress() sluice.Progress
}

// runCollector reads the progress of the runs going on when metrics are scraped.
type runCollector struct {
	now func() time.Time

	mu   sync.Mutex
	runs map[string]Progresser // by job: the job's latest run

	inFlight, pending, ingested         *prometheus.Desc
	rpm, tpm, learned, window, paused   *prometheus.Desc
	pauseLeft, breakerOpen, breakerTrip *prometheus.Desc
	waits, waited                       *prometheus.Desc
}

func newRunCollector(now func() time.Time) *runCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"job"}, nil)
	}
	return &runCollector{
		now:         now,
		runs:        map[string]Progresser{},
		inFlight:    d("sluice_requests_in_flight", "Requests sent and not yet answered."),
		pending:     d("sluice_requests_pending", "Requests of the job in the ledger that are neither final nor in flight."),
		ingested:    d("sluice_requests_ingested", "Input lines of the job in the ledger so far."),
		rpm:         d("sluice_limiter_requests_per_minute", "The request rate the limiter holds to (0: unlimited)."),
		tpm:         d("sluice_limiter_tokens_per_minute", "The token rate the limiter holds to (0: unlimited)."),
		learned:     d("sluice_limiter_learned", "1 when the limiter's rates were learned from the upstream's headers."),
		window:      d("sluice_limiter_window", "How many requests the limiter lets be in flight."),
		paused:      d("sluice_limiter_paused", "1 while the dispatcher waits out a 429 before sending more."),
		pauseLeft:   d("sluice_limiter_pause_remaining_seconds", "How much longer the dispatcher waits out a 429."),
		breakerOpen: d("sluice_breaker_open", "1 while the circuit breaker is open (no request is sent)."),
		breakerTrip: d("sluice_breaker_trips_total", "How often the circuit breaker opened, since the engine was made."),
		waits:       d("sluice_limiter_waits_total", "Requests the rate limits held back before sending, since the engine was made."),
		waited:      d("sluice_limiter_wait_seconds_total", "How long the rate limits held requests back, added up, since the engine was made."),
	}
}

func (c *runCollector) add(job string, p Progresser) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[job] = p
}

func (c *runCollector) remove(job string, p Progresser) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs[job] == p {
		delete(c.runs, job)
	}
}

// Describe sends the descriptions of the gauges: prometheus.Collector.
func (c *runCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.inFlight, c.pending, c.ingested, c.rpm, c.tpm, c.learned,
		c.window, c.paused, c.pauseLeft, c.breakerOpen, c.breakerTrip, c.waits, c.waited} {
		ch <- d
	}
}

// Collect reads every run's progress: prometheus.Collector.
func (c *runCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	runs := make(map[string]Progresser, len(c.runs))
	for job, p := range c.runs {
		runs[job] = p
	}
	c.mu.Unlock()
	now := c.now()
	for job, r := range runs {
		p := r.Progress()
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, job)
		}
		gauge(c.inFlight, float64(p.InFlight))
		gauge(c.pending, float64(max(p.Total-p.Done-p.Failed-p.InFlight, 0)))
		gauge(c.ingested, float64(p.Total))
		gauge(c.rpm, p.Limits.RPM)
		gauge(c.tpm, p.Limits.TPM)
		gauge(c.learned, boolValue(p.Limits.Learned))
		gauge(c.window, float64(p.Limits.Window))
		left := max(p.Limits.PausedUntil.Sub(now), 0)
		gauge(c.paused, boolValue(left > 0))
		gauge(c.pauseLeft, left.Seconds())
		gauge(c.breakerOpen, boolValue(p.BreakerOpen))
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, job)
		}
		counter(c.breakerTrip, float64(p.BreakerTrips))
		counter(c.waits, float64(p.Limits.Waits))
		counter(c.waited, p.Limits.Waited.Seconds())
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
