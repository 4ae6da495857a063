package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-llm/sluice"
)

// maxCodes bounds the distinct values of the code label of sluice_request_errors_total:
// an upstream that invents error codes must not grow the series without end. Codes past
// it are counted as "other".
const maxCodes = 64

// Buckets of the histograms, in seconds and tokens per second: LLM answers take from a
// fraction of a second to minutes.
var (
	latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600}
	ttftBuckets    = []float64{0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30}
	speedBuckets   = []float64{1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000}
)

// Metrics is a Prometheus registry of sluice's metrics. It is a sluice.RunObserver: set
// it as Config.Observer of one or more Engines, and serve Handler. Safe for concurrent
// use.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec   // job, model, status
	errors   *prometheus.CounterVec   // job, model, code
	latency  *prometheus.HistogramVec // job, model
	ttft     *prometheus.HistogramVec // job, model
	speed    *prometheus.HistogramVec // job, model
	tokens   *prometheus.CounterVec   // job, model, kind
	cost     *prometheus.CounterVec   // job, model

	// The children of each label set, resolved once: the attempt path does a map
	// look-up under a read lock and no allocation.
	mu     sync.RWMutex
	series map[seriesKey]*series
	codes  map[codeKey]prometheus.Counter
	nCodes map[string]bool // the distinct codes seen, up to maxCodes

	runs *runCollector

	// The jobs whose runs ended, with when, so that their series are deleted once
	// retention has passed (or when more than maxFinished jobs have ended): a serve that
	// runs batches for months must not grow its series with every batch it ever ran.
	retention   time.Duration
	maxFinished int
	now         func() time.Time
	endMu       sync.Mutex
	ended       map[string]time.Time
}

var _ sluice.RunObserver = (*Metrics)(nil)

type seriesKey struct {
	job, model string
	status     sluice.AttemptKind
}

type codeKey struct{ job, model, code string }

// series holds the children of one (job, model, status).
type series struct {
	requests prometheus.Counter
	*perModel
}

// perModel holds the children of one (job, model).
type perModel struct {
	latency, ttft, speed              prometheus.Observer
	prompt, completion, cached, spent prometheus.Counter
}

// DefaultRetention is how long the series of a job whose run ended are kept, so that
// scrapers read its final counts, before they are deleted.
const DefaultRetention = 10 * time.Minute

// DefaultMaxFinished is how many ended jobs keep their series at most: past it, the
// series of the job that ended first are deleted, however recent.
const DefaultMaxFinished = 256

// Options configure Metrics. The zero value is the defaults.
type Options struct {
	// Retention is how long a job's series are kept after its run ends (0:
	// DefaultRetention). A job that runs again before then keeps them.
	Retention time.Duration
	// MaxFinished bounds the ended jobs whose series are kept (0: DefaultMaxFinished).
	MaxFinished int
	// Now is the clock of retention and of the pause gauges (nil: time.Now).
	Now func() time.Time
}

// New returns Metrics with sluice's metrics, Go runtime and process metrics registered
// in a registry of its own, with the default Options.
func New() *Metrics { return NewWithOptions(Options{}) }

// NewWithOptions returns Metrics configured by o.
func NewWithOptions(o Options) *Metrics {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxFinished <= 0 {
		o.MaxFinished = DefaultMaxFinished
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Metrics{
		retention:   o.Retention,
		maxFinished: o.MaxFinished,
		now:         o.Now,
		ended:       map[string]time.Time{},
		reg:         prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_requests_total",
			Help: "Attempts at sending requests, by how they ended (status: ok, throttled, retry, failed, interrupted).",
		}, []string{"job", "model", "status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_request_errors_total",
			Help: "Attempts that did not succeed, by error code (the upstream's code, sluice's, or the HTTP status).",
		}, []string{"job", "model", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_request_duration_seconds",
			Help:    "Time from sending a request to the last byte of its answer, for answered requests (status ok).",
			Buckets: latencyBuckets,
		}, []string{"job", "model"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_time_to_first_token_seconds",
			Help:    "Time from sending a streamed request to the first token of its answer (status ok).",
			Buckets: ttftBuckets,
		}, []string{"job", "model"}),
		speed: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_output_tokens_per_second",
			Help:    "Completion tokens of an answer divided by its duration (status ok).",
			Buckets: speedBuckets,
		}, []string{"job", "model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_tokens_total",
			Help: "Tokens of the answers' usage, by kind: prompt, completion, and cached (the part of prompt served from the provider's cache).",
		}, []string{"job", "model", "kind"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_cost_usd_total",
			Help: "What the answers cost, in US dollars, at the prices sluice knows.",
		}, []string{"job", "model"}),
		series: map[seriesKey]*series{},
		codes:  map[codeKey]prometheus.Counter{},
		nCodes: map[string]bool{},
		runs:   newRunCollector(o.Now),
	}
	m.reg.MustRegister(m.requests, m.errors, m.latency, m.ttft, m.speed, m.tokens, m.cost, m.runs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are in, to add more or to gather them.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats. Each scrape first
// deletes the series of the jobs whose retention has passed.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.expire()
		h.ServeHTTP(w, r)
	})
}

// ObserveAttempt counts one finished attempt: sluice.Observer.
func (m *Metrics) ObserveAttempt(a *sluice.Attempt) {
	s := m.seriesFor(a.JobID, a.Model, a.Kind)
	s.requests.Inc()
	if a.Kind != sluice.AttemptOK && a.Kind != sluice.AttemptInterrupted {
		m.codeCounter(a.JobID, a.Model, errorCode(a)).Inc()
	}
	if a.Usage.PromptTokens > 0 {
		s.prompt.Add(float64(a.Usage.PromptTokens))
	}
	if a.Usage.CompletionTokens > 0 {
		s.completion.Add(float64(a.Usage.CompletionTokens))
	}
	if a.Usage.CachedTokens > 0 {
		s.cached.Add(float64(a.Usage.CachedTokens))
	}
	if a.Cost > 0 {
		s.spent.Add(a.Cost)
	}
	if a.Kind != sluice.AttemptOK {
		return
	}
	if a.Latency > 0 {
		s.latency.Observe(a.Latency.Seconds())
		if a.Usage.CompletionTokens > 0 {
			s.speed.Observe(float64(a.Usage.CompletionTokens) / a.Latency.Seconds())
		}
	}
	if a.TTFT > 0 {
		s.ttft.Observe(a.TTFT.Seconds())
	}
}

// seriesFor returns the children of (job, model, status), resolving them on first use.
func (m *Metrics) seriesFor(job, model string, status sluice.AttemptKind) *series {
	k := seriesKey{job, model, status}
	m.mu.RLock()
	s := m.series[k]
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.series[k]; s != nil {
		return s
	}
	var pm *perModel
	for other, os := range m.series { // another status of the same (job, model)
		if other.job == job && other.model == model {
			pm = os.perModel
			break
		}
	}
	if pm == nil {
		pm = &perModel{
			latency:    m.latency.WithLabelValues(job, model),
			ttft:       m.ttft.WithLabelValues(job, model),
			speed:      m.speed.WithLabelValues(job, model),
			prompt:     m.tokens.WithLabelValues(job, model, "prompt"),
			completion: m.tokens.WithLabelValues(job, model, "completion"),
			cached:     m.tokens.WithLabelValues(job, model, "cached"),
			spent:      m.cost.WithLabelValues(job, model),
		}
	}
	s = &series{requests: m.requests.WithLabelValues(job, model, string(status)), perModel: pm}
	m.series[k] = s
	return s
}

// codeCounter returns the error counter of (job, model, code).
func (m *Metrics) codeCounter(job, model, code string) prometheus.Counter {
	k := codeKey{job, model, code}
	m.mu.RLock()
	c := m.codes[k]
	m.mu.RUnlock()
	if c != nil {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.nCodes[code] {
		if len(m.nCodes) >= maxCodes {
			k.code = "other"
		} else {
			m.nCodes[code] = true
		}
	}
	if c = m.codes[k]; c == nil {
		c = m.errors.WithLabelValues(job, model, k.code)
		m.codes[k] = c
	}
	return c
}

// errorCode is the code label of an attempt that did not succeed.
func errorCode(a *sluice.Attempt) string {
	switch {
	case a.ErrorCode != "":
		return a.ErrorCode
	case a.StatusCode != 0:
		return strconv.Itoa(a.StatusCode)
	}
	return "unknown"
}

// RunStarted starts reading r's progress at every scrape: sluice.RunObserver.
func (m *Metrics) RunStarted(r *sluice.Run) {
	id := r.Job().ID
	m.endMu.Lock()
	delete(m.ended, id)
	m.endMu.Unlock()
	m.runs.add(id, r)
}

// RunEnded stops reading r's progress, and starts the retention of the job's series:
// sluice.RunObserver.
func (m *Metrics) RunEnded(r *sluice.Run) {
	id := r.Job().ID
	m.runs.remove(id, r)
	m.endMu.Lock()
	m.ended[id] = m.now()
	m.endMu.Unlock()
	m.expire()
}

// expire deletes the series of the ended jobs whose retention has passed, and of the
// oldest ended jobs past maxFinished.
func (m *Metrics) expire() {
	now := m.now()
	m.endMu.Lock()
	var gone []string
	for id, at := range m.ended {
		if now.Sub(at) >= m.retention {
			gone = append(gone, id)
			delete(m.ended, id)
		}
	}
	for len(m.ended) > m.maxFinished {
		oldest, first := "", time.Time{}
		for id, at := range m.ended {
			if oldest == "" || at.Before(first) || (at.Equal(first) && id < oldest) {
				oldest, first = id, at
			}
		}
		gone = append(gone, oldest)
		delete(m.ended, oldest)
	}
	m.endMu.Unlock()
	for _, id := range gone {
		m.forget(id)
	}
}

// forget deletes every series of job.
func (m *Metrics) forget(job string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.series {
		if k.job == job {
			delete(m.series, k)
		}
	}
	for k := range m.codes {
		if k.job == job {
			delete(m.codes, k)
		}
	}
	l := prometheus.Labels{"job": job}
	m.requests.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.ttft.DeletePartialMatch(l)
	m.speed.DeletePartialMatch(l)
	m.tokens.DeletePartialMatch(l)
	m.cost.DeletePartialMatch(l)
}

// Track reads p's progress at every scrape, under the job label job, until the returned
// function is called. Runs of an Engine whose Observer is m are tracked already; Track
// is for other sources of progress.
func (m *Metrics) Track(job string, p Progresser) (untrack func()) {
	m.runs.add(job, p)
	return func() { m.runs.remove(job, p) }
}
