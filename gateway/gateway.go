package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/h1"
)

// Gateway defaults.
const (
	// DefaultMaxBodyBytes is the largest request body a client may send.
	DefaultMaxBodyBytes = 32 << 20
	// DefaultMaxAnswerBytes is the largest non-streamed answer relayed.
	DefaultMaxAnswerBytes = 64 << 20
	// DefaultQueueWait is the longest an online request waits for an upstream's rate
	// limiter before it fails over to the next upstream (or, on the last, is answered 429).
	DefaultQueueWait = 5 * time.Second
	// DefaultModelsTTL is how long the model lists of upstreams are kept.
	DefaultModelsTTL = time.Minute
	// DefaultUsageInterval is how often usage is written to the ledger.
	DefaultUsageInterval = time.Second
	// DefaultCacheTTL is how long a cached answer is served.
	DefaultCacheTTL = time.Hour
	// DefaultMaxIdleConnsPerHost is how many idle connections are kept to each upstream.
	DefaultMaxIdleConnsPerHost = 512
)

// Admitter lets online requests through an upstream's shared limits (sluice.Engine
// implements it): see sluice.Engine.Admit.
type Admitter interface {
	Admit(ctx context.Context, est sluice.Estimate, maxWait time.Duration) (done func(*sluice.Response, error), err error)
	MeanOutput(def int64) int64
}

// Upstream is one provider endpoint and key that models are routed to.
type Upstream struct {
	// Name identifies the upstream in logs and in the x-sluice-upstream header.
	Name string
	// BaseURL is the API's base URL, such as https://api.openai.com/v1: a request to
	// /v1/chat/completions goes to BaseURL + /chat/completions.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer APIKey" ("" sends none).
	APIKey string
	// Models are the models routed here; empty means every model.
	Models []string
	// Weight is the share of a model's requests this upstream gets among the upstreams
	// that serve it (0 means 1).
	Weight float64
	// Engine, when set, is the batch engine of the same upstream: online requests go
	// through its breaker and limiter, ahead of its batches.
	Engine Admitter
	// Transport sends the requests; nil means the Gateway's shared transport.
	Transport http.RoundTripper
}

// Key is a client key: its hash (the key itself is never kept: a key a client presents
// is hashed on each request), its name for usage, and its own request and token rates.
type Key struct {
	// Name identifies the key in usage records.
	Name string
	// Hash is the hex SHA-256 of the key.
	Hash string
	// RPM and TPM cap the key's online requests and tokens per minute (0: no cap). A
	// request past them is answered 429 rate_limit_exceeded.
	RPM, TPM float64
}

// HashKey returns the hex SHA-256 of a client key, the form Key.Hash holds.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// UsageStore records online usage in the ledger that batches use (sqlite.Store
// implements it). Rows are replaced, never added to: see sqlite.Store.SaveUsage. A row
// counts requests, of which cacheHits were answered from the cache at no cost.
type UsageStore interface {
	SaveUsage(ctx context.Context, id, owner, keyName, user string, created time.Time, u sluice.Usage, cost float64,
		requests, cacheHits int64) error
}

// CacheStore keeps cached answers by key (sqlite.Store and postgres.Store implement it).
type CacheStore interface {
	GetCached(ctx context.Context, keys []string) (map[string][]byte, error)
	PutCached(ctx context.Context, entries map[string][]byte) error
}

// Config configures a Gateway. Upstreams and Keys are required; the zero value of every
// other field means its default or "off".
type Config struct {
	// Upstreams serve the models; a model is routed among those whose Models name it or
	// are empty, by weight.
	Upstreams []Upstream
	// Aliases rename a requested model before routing (gpt-4o-mini → deepseek-chat): the
	// body sent upstream names the target.
	Aliases map[string]string
	// Fallbacks are tried, in order, when every upstream of a model failed before its
	// answer started: model → the models to try next.
	Fallbacks map[string][]string
	// Keys are the client keys.
	Keys []Key
	// Budget returns the budget pool of the key with hash owner for the current period,
	// shared with its batches (nil when the key has no budget). A request reserves its
	// worst case there first, and is answered 429 insufficient_quota when it does not
	// fit. nil: no budgets.
	Budget func(ctx context.Context, owner string) (*sluice.BudgetPool, error)
	// Usage records what online requests used, per key, user and day; nil records none.
	Usage UsageStore
	// UsageInterval is how often usage is written (DefaultUsageInterval).
	UsageInterval time.Duration
	// Cost prices usage for the ledger; nil records tokens only.
	Cost func(model string, u sluice.Usage) float64
	// Cache, when set, serves repeated deterministic requests (non-streamed, with
	// temperature 0 or a seed) from the store for CacheTTL (DefaultCacheTTL).
	// CacheShared shares answers between keys; otherwise each key has its own.
	Cache       CacheStore
	CacheTTL    time.Duration
	CacheShared bool
	// QueueWait bounds the wait for an upstream's rate limiter (DefaultQueueWait).
	QueueWait time.Duration
	// MaxBodyBytes bounds a request body (DefaultMaxBodyBytes); MaxAnswerBytes a
	// non-streamed answer (DefaultMaxAnswerBytes).
	MaxBodyBytes, MaxAnswerBytes int64
	// ModelsTTL is how long the upstreams' model lists are kept (DefaultModelsTTL).
	ModelsTTL time.Duration
	// Transport sends requests to upstreams with no Transport of their own. nil means: a
	// plain-HTTP upstream reached without a proxy has a pool of its own of up to
	// DefaultMaxIdleConnsPerHost HTTP/1.1 connections, sent on and read from by the
	// request's goroutine (no goroutines of the connection's, which cost about a
	// quarter of the gateway's CPU); the others share a net/http transport keeping
	// DefaultMaxIdleConnsPerHost idle connections per host (NewTransport).
	Transport http.RoundTripper
	// Logger receives notices; nil discards them.
	Logger *slog.Logger
	// Now is the clock of usage days; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.UsageInterval == 0 {
		c.UsageInterval = DefaultUsageInterval
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.QueueWait == 0 {
		c.QueueWait = DefaultQueueWait
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxAnswerBytes == 0 {
		c.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if c.ModelsTTL == 0 {
		c.ModelsTTL = DefaultModelsTTL
	}
	if c.Transport == nil {
		c.Transport = NewTransport(DefaultMaxIdleConnsPerHost)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case len(c.Upstreams) == 0:
		return errors.New("no upstream")
	case len(c.Keys) == 0:
		return errors.New("no client keys")
	case c.UsageInterval < 0 || c.CacheTTL < 0 || c.QueueWait < 0 || c.ModelsTTL < 0:
		return errors.New("durations must not be negative")
	case c.MaxBodyBytes < 0 || c.MaxAnswerBytes < 0:
		return errors.New("body limits must not be negative")
	}
	names := map[string]bool{}
	for _, u := range c.Upstreams {
		if u.Name == "" || names[u.Name] {
			return fmt.Errorf("upstream names must be unique and not empty, got %q", u.Name)
		}
		names[u.Name] = true
		if !strings.HasPrefix(u.BaseURL, "http://") && !strings.HasPrefix(u.BaseURL, "https://") {
			return fmt.Errorf("upstream %q: base URL must be http or https", u.Name)
		}
		if u.Weight < 0 {
			return fmt.Errorf("upstream %q: weight must not be negative", u.Name)
		}
	}
	for _, k := range c.Keys {
		if b, err := hex.DecodeString(k.Hash); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("key %q: hash is not a hex SHA-256", k.Name)
		}
		if k.RPM < 0 || k.TPM < 0 {
			return fmt.Errorf("key %q: rpm and tpm must not be negative", k.Name)
		}
	}
	for from, to := range c.Aliases {
		if from == "" || to == "" || from == to {
			return fmt.Errorf("alias %q → %q: both must be named and differ", from, to)
		}
	}
	return nil
}

// NewTransport returns an HTTP transport for upstreams: many idle connections per host
// (maxIdlePerHost), no compression (answers are scanned for usage as they pass), no
// response-header timeout (a model may think for minutes; the client's request bounds
// the wait).
func NewTransport(maxIdlePerHost int) *http.Transport {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(maxIdlePerHost, 100) * 4,
		MaxIdleConnsPerHost:   max(maxIdlePerHost, 1),
		IdleConnTimeout:       45 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// Gateway proxies online requests to upstreams: see the package documentation. Create it
// with New, mount Handler (or Register), and stop it with Close.
type Gateway struct {
	cfg Config
	ups []*upstream
	// keys are the client keys by their SHA-256: a presented key is hashed on every
	// request (about 0.3 µs), so that no key a client presented is kept.
	keys       map[[sha256.Size]byte]*clientKey
	mux        *http.ServeMux
	usage      *usageBook
	modelCache modelList
	pools      []*h1.Transport // the plain-HTTP upstreams' own connections

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// New returns a Gateway; it starts the writer of usage, stopped by Close.
func New(cfg Config) (*Gateway, error) {
	ownPools := cfg.Transport == nil
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{cfg: cfg, keys: map[[sha256.Size]byte]*clientKey{}, mux: http.NewServeMux(), stop: make(chan struct{})}
	for i := range cfg.Upstreams {
		u := cfg.Upstreams[i]
		up := &upstream{Upstream: u, base: strings.TrimRight(u.BaseURL, "/"), rt: u.Transport, name: []string{u.Name}}
		if up.rt == nil {
			up.rt = cfg.Transport
			if ownPools {
				if pool, ok := h1.New(up.base, h1.Config{MaxIdle: DefaultMaxIdleConnsPerHost, Fallback: cfg.Transport, ResendWritten: true}); ok {
					up.rt = pool
					g.pools = append(g.pools, pool)
				}
			}
		}
		if up.Weight == 0 {
			up.Weight = 1
		}
		if u.APIKey != "" {
			up.auth = []string{"Bearer " + u.APIKey}
		}
		if err := up.parseURLs(); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		g.ups = append(g.ups, up)
	}
	for _, k := range cfg.Keys {
		var sum [sha256.Size]byte
		if len(k.Hash) != hex.EncodedLen(len(sum)) {
			return nil, fmt.Errorf("gateway: key %q: the hash must be a hex SHA-256", k.Name)
		}
		if _, err := hex.Decode(sum[:], []byte(k.Hash)); err != nil {
			return nil, fmt.Errorf("gateway: key %q: the hash must be a hex SHA-256", k.Name)
		}
		g.keys[sum] = newClientKey(k, cfg.Now())
	}
	g.usage = newUsageBook(cfg)
	g.modelCache.ttl = cfg.ModelsTTL
	g.Register(g.mux)
	if cfg.Usage != nil {
		g.wg.Go(g.writeUsage)
	}
	return g, nil
}

// Paths are the endpoints the Gateway proxies.
var Paths = []string{sluice.EndpointChatCompletions, sluice.EndpointCompletions, sluice.EndpointEmbeddings, sluice.EndpointResponses}

// Register adds the Gateway's routes to mux: POST on each of Paths, GET /v1/models and
// GET /v1/models/{model}.
func (g *Gateway) Register(mux *http.ServeMux) {
	for _, p := range Paths {
		mux.HandleFunc("POST "+p, g.serveProxy)
	}
	mux.HandleFunc("GET /v1/models", g.serveModels)
	mux.HandleFunc("GET /v1/models/{model...}", g.serveModel)
}

// Handler returns the Gateway's handler, which answers only its own routes.
func (g *Gateway) Handler() http.Handler { return g.mux }

// Close writes the usage not yet written, stops the writer and closes the idle
// connections to plain-HTTP upstreams. Requests still being served are not waited for:
// stop serving HTTP first.
func (g *Gateway) Close(ctx context.Context) error {
	g.once.Do(func() {
		close(g.stop)
		for _, p := range g.pools {
			p.Close()
		}
	})
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("gateway: close: %w", ctx.Err())
	}
	if g.cfg.Usage == nil {
		return nil
	}
	if err := g.usage.flush(ctx, g.cfg.Usage); err != nil {
		return fmt.Errorf("gateway: close: %w", err)
	}
	return nil
}

// serves reports whether u serves model.
func (u *upstream) serves(model string) bool {
	return len(u.Models) == 0 || slices.Contains(u.Models, model)
}
