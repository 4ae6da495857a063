package sim

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server. The zero Config is an instant simulator with no limits and
// no faults, serving DefaultModels to anyone.
type Config struct {
	// Seed seeds fault injection, latency jitter and the length of answers: two servers
	// with the same Config answer the same sequence of requests the same way.
	Seed int64

	// TTFT is the time to the first token of an answer and PerToken the time per output
	// token: a request waits TTFT + PerToken × its completion tokens (a stream sends its
	// first chunk after TTFT and one more every PerToken). Zero means no wait at all.
	TTFT, PerToken time.Duration
	// Jitter varies each request's latency by up to ± this fraction (0.2 = ±20%), drawn
	// uniformly. It is clamped to [0, 1].
	Jitter float64

	// RPM and TPM are hidden limits on requests and tokens per minute (0: none), enforced
	// like OpenAI's: token buckets holding a minute's worth that refill continuously. A
	// request counts its prompt plus max_tokens (times n) against TPM when it is admitted.
	RPM, TPM int64
	// NoLimitHeaders leaves out the x-ratelimit-* headers, as many providers do.
	NoLimitHeaders bool
	// NoRetryAfter leaves retry-after and retry-after-ms out of 429 answers.
	NoRetryAfter bool
	// Random429 is the share, in [0, 1], of requests to the generation endpoints answered
	// 429 at random whatever the load, as an overloaded relay does: no retry-after, no
	// x-ratelimit-* headers, nothing taken from RPM or TPM (see random429.go).
	Random429 float64

	// Fault fractions, each in [0, 1], of the requests to the generation endpoints: Error5xx
	// are answered 500, 502 or 503; Reset lose their connection without an answer; Hang
	// get no answer until the client gives up or the server is closed; Truncate get a 200
	// whose JSON body is cut short; Stall get a stream that sends its first half and then
	// nothing more, its connection open, until the client gives up or the server is closed
	// (a request that does not stream is answered as usual). Each request draws at
	// most one fault: see the package documentation for the order.
	Error5xx, Reset, Hang, Truncate, Stall float64

	// APIKey, when set, is required as "Authorization: Bearer <key>"; other requests are
	// answered 401 with code invalid_api_key.
	APIKey string

	// Models are the models served (and listed by GET /v1/models); empty means
	// DefaultModels. A served model's dated snapshots (name-YYYY-MM-DD) are served too;
	// other models are answered 404 with code model_not_found.
	Models []string

	// Quirks are behaviours of upstreams met in the wild: transient 404s, dropped
	// connections, refused connections, streams without usage.
	Quirks
}

// Stats are a Server's counters since it was created. Every request counts in Requests
// and in at most one of the other request counters.
type Stats struct {
	Requests     int64 // every request received
	OK           int64 // answered 200 in full (a stream counts when it starts)
	Throttled    int64 // answered 429
	Errors5xx    int64 // answered 5xx by fault injection
	Resets       int64 // connection reset by fault injection
	Hangs        int64 // hung by fault injection
	Truncated    int64 // answered 200 with a truncated body by fault injection
	Stalled      int64 // streams stalled halfway by fault injection (in OK too: it started)
	Unauthorized int64 // answered 401
	BadRequests  int64 // answered 400
	NotFound     int64 // answered 404: unknown model or URL
	Canceled     int64 // abandoned by the client while the answer was being generated
	// PromptTokens and CompletionTokens add up the usage of the answers counted in OK.
	PromptTokens     int64
	CompletionTokens int64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests: c.requests.Load(), OK: c.ok.Load(), Throttled: c.throttled.Load(),
		Errors5xx: c.errors5xx.Load(), Resets: c.resets.Load(), Hangs: c.hangs.Load(),
		Truncated: c.truncated.Load(), Stalled: c.stalled.Load(), Unauthorized: c.unauthorized.Load(),
		BadRequests: c.badRequests.Load(), NotFound: c.notFound.Load(), Canceled: c.canceled.Load(),
		PromptTokens: c.promptTokens.Load(), CompletionTokens: c.completionTokens.Load(),
	}
}

// Server is the simulator: an http.Handler serving the OpenAI API under /v1. It is safe
// for concurrent use. Serve it on a listener, or use Transport to call it without one.
type Server struct {
	cfg    Config
	models map[string]bool
	limits *limiter // nil without RPM and TPM
	quirks quirkState

	// now is the clock of the rate limits and of the created timestamps; tests replace it
	// before serving.
	now func() time.Time
	// onHang, when set by a test, is called when a request starts to hang.
	onHang func()
	// onWait, when set by a test, is called as each simulated wait (latency, a stream's
	// pacing) starts, with its length; with noWait the wait is then skipped, so that a
	// test checks what the simulator would sleep without sleeping it.
	onWait func(d time.Duration)
	noWait bool

	seq       atomic.Uint64 // requests received, numbering them for the fault draws
	closed    chan struct{}
	closeOnce sync.Once
	bufs      sync.Pool // *bytes.Buffer for request bodies

	stats struct {
		requests, ok, throttled, errors5xx, resets, hangs, truncated atomic.Int64
		stalled                                                      atomic.Int64
		unauthorized, badRequests, notFound, canceled                atomic.Int64
		promptTokens, completionTokens                               atomic.Int64
	}
}

// New returns a simulator with cfg. Out-of-range values are clamped: negative durations,
// limits and fractions to 0, Jitter and fractions to at most 1.
func New(cfg Config) *Server {
	cfg.TTFT, cfg.PerToken = max(cfg.TTFT, 0), max(cfg.PerToken, 0)
	cfg.RPM, cfg.TPM = max(cfg.RPM, 0), max(cfg.TPM, 0)
	for _, f := range []*float64{&cfg.Jitter, &cfg.Error5xx, &cfg.Reset, &cfg.Hang, &cfg.Truncate, &cfg.Stall, &cfg.Random429, &cfg.Drop, &cfg.ErrorIn200, &cfg.CloseAfterAnswer, &cfg.StreamErrorAfterRole} {
		*f = min(max(*f, 0), 1)
	}
	if len(cfg.Models) == 0 {
		cfg.Models = DefaultModels()
	} else {
		cfg.Models = slices.Clone(cfg.Models)
	}
	s := &Server{
		cfg:    cfg,
		models: make(map[string]bool, len(cfg.Models)),
		now:    time.Now,
		closed: make(chan struct{}),
	}
	for _, m := range cfg.Models {
		s.models[m] = true
	}
	if cfg.RPM > 0 || cfg.TPM > 0 {
		s.limits = newLimiter(cfg.RPM, cfg.TPM)
	}
	return s
}

// Close releases every request waiting on the server: hung requests fail as if their
// connection was reset, latency waits end at once. Requests that arrive later are still
// answered, without latency. Close is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}
