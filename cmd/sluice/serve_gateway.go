package main

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/gateway"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

// gatewayConfig is the gateway section of serve's config file.
type gatewayConfig struct {
	// Aliases rename a requested model (gpt-4o-mini: deepseek-chat).
	Aliases map[string]string `yaml:"aliases"`
	// Fallbacks are the models tried when every upstream of a model failed.
	Fallbacks map[string][]string `yaml:"fallbacks"`
	// Keys are per-key request and token rates, by key name.
	Keys map[string]keyRateConfig `yaml:"keys"`
}

// keyRateConfig caps one client key's online requests and tokens per minute.
type keyRateConfig struct {
	RPM float64 `yaml:"rpm"`
	TPM float64 `yaml:"tpm"`
}

// gatewayFlags are serve's flags for the online gateway.
type gatewayFlags struct {
	off         bool
	cacheTTL    time.Duration
	cacheShared bool
	queueWait   time.Duration
}

func (f *gatewayFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&f.off, "no-gateway", false, "serve only the batch API, not the online endpoints (/v1/chat/completions, /v1/embeddings, ...)")
	fs.DurationVar(&f.cacheTTL, "cache-ttl", 0, "cache deterministic online answers (temperature 0 or a seed, not streamed) for this long (0: no cache)")
	fs.BoolVar(&f.cacheShared, "cache-shared", false, "share cached online answers between client keys (default: each key has its own)")
	fs.DurationVar(&f.queueWait, "queue-wait", gateway.DefaultQueueWait, "the longest an online request waits for an upstream's rate limit before failing over")
}

// newGateway makes the online gateway over serve's upstreams and engines, its keys and
// budgets the batch server's. It returns nil when the gateway is off.
func newGateway(e *env, f *gatewayFlags, cfg *serveConfig, routes []service.Route, keys []service.Key,
	budget func(context.Context, string) (*sluice.BudgetPool, error), st *sqlite.Store,
	cost func(string, sluice.Usage) float64, logger *slog.Logger) (*gateway.Gateway, func(), error) {
	if f.off {
		return nil, func() {}, nil
	}
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	gc := gateway.Config{
		Aliases: cfg.Gateway.Aliases, Fallbacks: cfg.Gateway.Fallbacks,
		Budget: budget, Usage: st, Cost: cost, QueueWait: f.queueWait, Logger: logger,
	}
	if f.cacheTTL > 0 {
		gc.Cache, gc.CacheTTL, gc.CacheShared = st, f.cacheTTL, f.cacheShared
	}
	for i, u := range cfg.Upstreams {
		gu := gateway.Upstream{
			Name: u.Name, BaseURL: strings.TrimRight(u.BaseURL, "/"), Models: u.Models, Weight: u.Weight,
			APIKey: e.getenv(cmp.Or(u.APIKeyEnv, defaultAPIKeyEnv)), Engine: routes[i].Engine,
		}
		if u.BaseURL == simUpstreamName {
			s := sim.New(serveSim())
			closers = append(closers, s.Close)
			gu.BaseURL, gu.APIKey, gu.Transport = simURL, "", s.Transport()
		}
		gc.Upstreams = append(gc.Upstreams, gu)
	}
	for _, k := range keys {
		r := cfg.Gateway.Keys[k.Name]
		gc.Keys = append(gc.Keys, gateway.Key{Name: k.Name, Hash: k.Hash, RPM: r.RPM, TPM: r.TPM})
	}
	g, err := gateway.New(gc)
	if err != nil {
		closeAll()
		return nil, nil, usageError("%v", err)
	}
	return g, closeAll, nil
}

// serveMux composes the gateway's routes, when it is on, with the rest of serve (the batch
// API and the dashboard).
func serveMux(rest http.Handler, g *gateway.Gateway) http.Handler {
	if g == nil {
		return rest
	}
	mux := http.NewServeMux()
	g.Register(mux)
	mux.Handle("/", rest)
	return mux
}

// closeGateway closes g, when there is one, writing its last usage.
func closeGateway(ctx context.Context, g *gateway.Gateway) error {
	if g == nil {
		return nil
	}
	return g.Close(ctx)
}
