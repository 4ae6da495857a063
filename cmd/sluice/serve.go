package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/sluice-llm/sluice"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/internal/ids"
	"github.com/sluice-llm/sluice/internal/logx"
	"github.com/sluice-llm/sluice/internal/storeurl"
	"github.com/sluice-llm/sluice/metrics"
	"github.com/sluice-llm/sluice/postgres"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

const (
	defaultListen   = "127.0.0.1:8080"
	clientKeysEnv   = "SLUICE_API_KEYS"
	simUpstreamName = "sim"
)

// serveFlags are serve's command line.
type serveFlags struct {
	listen, baseURL, apiKeyEnv, store, config, filesDir string
	webhookURL, prices                                  string
	batchWebhooks                                       bool
	webhookAllow                                        []string
	defaultContext                                      int64
	maxLines, maxBytes                                  int64
	concurrency, maxAttempts                            int
	rpm, tpm                                            float64
	timeout, grace, leaseTTL                            time.Duration
	anyWindow                                           bool
	logLevel                                            slog.Level
	limits                                              sluicehttp.Limits
	gateway                                             gatewayFlags
}

// serveConfig is the YAML config file of serve.
type serveConfig struct {
	Upstreams []upstreamConfig `yaml:"upstreams"`
	// WebhookURL is told of every batch that ends, unless --webhook-url is given.
	WebhookURL string `yaml:"webhook_url"`
	// Budgets are the budgets of client keys, by the names given to them in
	// $SLUICE_API_KEYS (name=key); DefaultBudget is the budget of every other key.
	Budgets       map[string]budgetConfig `yaml:"budgets"`
	DefaultBudget *budgetConfig           `yaml:"default_budget"`
	// Gateway configures the online endpoints: model aliases, fallbacks, key rates.
	Gateway gatewayConfig `yaml:"gateway"`
}

// budgetConfig is a client key's budget in the config file.
type budgetConfig struct {
	MaxCostUSD float64 `yaml:"max_cost_usd"`
	MaxTokens  int64   `yaml:"max_tokens"`
	Period     string  `yaml:"period"`    // monthly (default) or daily
	ResetDay   int     `yaml:"reset_day"` // 1 to 28, for monthly
}

func (b budgetConfig) budget() service.KeyBudget {
	return service.KeyBudget{MaxCost: b.MaxCostUSD, MaxTokens: b.MaxTokens, Period: service.Period(b.Period), ResetDay: b.ResetDay}
}

// upstreamConfig is one upstream of the config file. A base_url of "sim" is the built-in
// simulator.
type upstreamConfig struct {
	Name        string `yaml:"name"`
	BaseURL     string `yaml:"base_url"`
	APIKeyEnv   string `yaml:"api_key_env"`
	Concurrency int    `yaml:"concurrency"`
	// Stream and StreamIdleTimeout are run's --stream and --stream-idle-timeout.
	Stream            bool     `yaml:"stream"`
	StreamIdleTimeout string   `yaml:"stream_idle_timeout"`
	RPM               float64  `yaml:"rpm"`
	TPM               float64  `yaml:"tpm"`
	Models            []string `yaml:"models"`
	// Weight is the upstream's share of online requests for a model that several serve.
	Weight float64 `yaml:"weight"`
}

func newServeCmd(e *env) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve an OpenAI-compatible Batch API (/v1/files, /v1/batches) over any upstream",
		Long: `serve answers the OpenAI Files and Batches APIs, so the official SDKs can upload a JSONL
file, create a batch, poll it and download its results; sluice runs each batch with its
engine (limits, retries, ledger) against the configured upstream. With no --base-url and no
--config it serves over the built-in simulator.

Clients must present one of the keys in $SLUICE_API_KEYS (comma-separated, each KEY or
NAME=KEY; see "Keys" below); only their hashes are kept. Batches survive restarts: a server started again over the same --store
resumes them, and finished requests are never sent again.

A --config file lists several upstreams and routes models to them:

  upstreams:
    - name: deepseek
      base_url: https://api.deepseek.com/v1
      api_key_env: DEEPSEEK_API_KEY
      concurrency: 32
      rpm: 500
      models: [deepseek-chat, deepseek-reasoner]
    - name: local
      base_url: http://127.0.0.1:8000/v1     # every other model
  webhook_url: https://hooks.example.com/sluice  # told of every batch that ends
  budgets:                        # by key name (SLUICE_API_KEYS=alice=sk-...,bob=sk-...)
    alice: {max_cost_usd: 50, period: monthly, reset_day: 1}
    bob: {max_tokens: 2000000, period: daily}
  default_budget: {max_cost_usd: 5}   # every other key

A key whose budget for the period is spent gets 429 insufficient_quota on new batches;
its running batches stop and fail with an insufficient_quota error, keeping what
finished. GET /v1/usage tells a key its usage; "sluice serve usage" lists every key's.

It is an online gateway for the same keys too: POST /v1/chat/completions, /v1/completions,
/v1/embeddings and /v1/responses (streams included) go to the upstreams serving the model,
with failover, within the same limits and budgets (see "gateway:" in docs/serve.md).

A batch whose metadata has "webhook_url" is POSTed there instead when it ends; a webhook is
retried with backoff (5 attempts) and never holds a batch back.

Keys: ` + keysSyntax,
		Example: `  SLUICE_API_KEYS=sk-mine sluice serve                     # over the simulator
  SLUICE_API_KEYS=sk-mine sluice serve --base-url http://127.0.0.1:8000/v1 --concurrency 16`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), e, f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.listen, "listen", defaultListen, "the address to serve on")
	fs.StringVar(&f.baseURL, "base-url", "", "the upstream's base URL (default: the built-in simulator)")
	fs.StringVar(&f.apiKeyEnv, "api-key-env", defaultAPIKeyEnv, "the environment variable that holds the upstream's API key")
	fs.StringVar(&f.store, "store", "", storeUsage)
	fs.StringVar(&f.filesDir, "files-dir", "", "where file contents are kept (default: next to a SQLite store; for PostgreSQL, serve-files in the user's data directory: replicas must share one)")
	fs.StringVar(&f.config, "config", "", "a YAML file of upstreams and the models routed to them, and key budgets")
	fs.StringVar(&f.prices, "prices", "", "a price table (sluice or LiteLLM JSON) to add to the built-in one, for the budgets")
	fs.Int64Var(&f.maxLines, "max-lines", service.DefaultMaxLines, "most lines in an input file")
	fs.Int64Var(&f.maxBytes, "max-bytes", service.DefaultMaxBytes, "largest input file in bytes")
	fs.IntVarP(&f.concurrency, "concurrency", "c", sluice.DefaultConcurrency, "most requests in flight at once, per upstream")
	fs.Float64Var(&f.rpm, "rpm", 0, "cap on requests per minute, per upstream (default: learn the upstream's limit)")
	fs.Float64Var(&f.tpm, "tpm", 0, "cap on tokens per minute, per upstream (default: learn the upstream's limit)")
	fs.IntVar(&f.maxAttempts, "max-attempts", sluice.DefaultMaxAttempts, "attempts per request before it fails")
	fs.DurationVar(&f.timeout, "timeout", sluice.DefaultTimeout, "timeout for one attempt")
	fs.DurationVar(&f.grace, "grace", defaultGrace, "on shutdown, how long requests in flight may finish")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", service.DefaultLeaseTTL, "how long a replica's hold on a batch it runs lasts unless renewed (every third of it): another replica on the store takes the batches of one that died after about 4/3 of it")
	fs.StringVar(&f.webhookURL, "webhook-url", "", `POST each batch that ends (completed, failed, expired, cancelled) to this URL`)
	fs.BoolVar(&f.batchWebhooks, "batch-webhooks", false, `let clients name a webhook in a batch's metadata "webhook_url" (it lets any client key make this server POST to any address it reaches)`)
	fs.Int64Var(&f.defaultContext, "default-context", defaultContextTokens, "the context window (prompt plus output, tokens) assumed for a request without max_tokens when it reserves against a key's budget; 0 reserves the mean output seen, which a budget may overshoot")
	fs.StringSliceVar(&f.webhookAllow, "webhook-allow", nil, "a network (CIDR) webhooks may reach although it is link-local or fd00::/8, where clouds serve instance metadata (repeatable)")
	fs.BoolVar(&f.anyWindow, "any-completion-window", false, `accept any duration ("90m") as completion_window, not only "24h"`)
	fs.IntVar(&f.limits.MaxConns, "max-conns", sluicehttp.DefaultMaxConns, "most client connections at once; past it a new one is answered 503 (-1: no cap)")
	fs.IntVar(&f.limits.MaxConnsPerIP, "max-conns-per-ip", sluicehttp.DefaultMaxConnsPerIP, "most client connections at once from one address (-1: no cap)")
	fs.DurationVar(&f.limits.ReadHeaderTimeout, "read-header-timeout", sluicehttp.DefaultReadHeaderTimeout, "how long a client has to send a request's headers")
	fs.DurationVar(&f.limits.IdleTimeout, "idle-timeout", sluicehttp.DefaultIdleTimeout, "how long a kept-alive connection may wait for its next request, and a read or write of a body for progress")
	fs.Int64Var(&f.limits.MinRate, "min-rate", sluicehttp.DefaultMinRate, "the slowest, in bytes a second on average, that a request body may arrive or a response be taken, after --rate-grace")
	fs.DurationVar(&f.limits.RateGrace, "rate-grace", sluicehttp.DefaultRateGrace, "the time a body or a response has before --min-rate applies")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "the least level logged: debug, info, warn or error (a client that went away is logged at debug; repeats of a line past 10 a minute are counted, not logged)")
	f.gateway.add(fs)
	cmd.AddCommand(newServeUsageCmd(e))
	return cmd
}

// runServe serves until the first interrupt, then shuts down within the grace period.
func runServe(ctx context.Context, e *env, f *serveFlags) error {
	cfg, err := f.loadConfig()
	if err != nil {
		return err
	}
	keys, err := clientKeys(e.getenv(clientKeysEnv), cfg)
	if err != nil {
		return err
	}
	prices, err := loadPrices(f.prices)
	if err != nil {
		return err
	}
	allow, err := parsePrefixes(f.webhookAllow)
	if err != nil {
		return err
	}
	st, loc, path, err := openServeStore(ctx, e, f.store)
	if err != nil {
		return err
	}
	defer st.Close()
	limiter := logx.RateLimit(e.logHandler(f.logLevel), logx.DefaultBurst, logx.DefaultInterval, nil)
	defer func() { _ = limiter.Flush(context.WithoutCancel(ctx)) }()
	logger := slog.New(limiter)
	m := metrics.New()
	routes, closeUps, err := f.engines(e, st, cfg.Upstreams, logger, m)
	if err != nil {
		return err
	}
	defer closeUps()
	filesDir, err := serveFilesDir(e, loc, f.filesDir)
	if err != nil {
		return err
	}
	warnExposed(logger, loc, filesDir)
	// The lock beside the store tells this process that the one that held it before has
	// ended: its batches are taken back at once, not after --lease-ttl.
	lockBase, err := serveLockBase(e, loc)
	if err != nil {
		return err
	}
	session := ids.Hex(8)
	ended, unlock, err := takeServeSlot(lockBase, session)
	if err != nil {
		return err
	}
	defer unlock()
	var adminKeys []string
	if k := e.getenv(adminKeyEnv); k != "" {
		adminKeys = append(adminKeys, service.HashKey(k))
	}
	svc, err := service.New(ctx, service.Config{
		Store: st, FilesDir: filesDir, Routes: routes, Keys: keys, AdminKeyHashes: adminKeys,
		MaxLines: f.maxLines, MaxBytes: f.maxBytes, AnyCompletionWindow: f.anyWindow, Logger: logger,
		LeaseTTL: f.leaseTTL, Session: session, Ended: ended,
		WebhookURL: cmp.Or(f.webhookURL, cfg.WebhookURL),
		// Budgets count what the upstream charges: its online prices.
		Cost: prices.OnlineCost,

		// A model counts as priced when the table (with --prices) has it, even at 0.
		Priced: func(model string) bool {
			_, ok := prices.Lookup(model)
			return ok
		},
		ContextLimit:  func(string) int64 { return f.defaultContext },
		BatchWebhooks: f.batchWebhooks,
		WebhookAllow:  allow,
	})
	if err != nil {
		return usageError("%v", err)
	}
	srv := sluicehttp.NewServer(svc, logger)
	gw, closeGw, err := newGateway(e, &f.gateway, cfg, routes, keys, svc.BudgetPool, st, prices.OnlineCost, logger)
	if err != nil {
		return errors.Join(err, svc.Close(ctx))
	}
	defer closeGw()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return errors.Join(fmt.Errorf("listen: %w", err), closeGateway(ctx, gw), svc.Close(ctx))
	}
	ln = sluicehttp.Listen(ln, f.limits)
	handler, err := withDashboard(srv, st, prices.OnlineCost) // ui.go
	if err != nil {
		return errors.Join(err, ln.Close(), closeGateway(ctx, gw), svc.Close(ctx))
	}
	hs := sluicehttp.NewHTTPServer(withMetrics(serveMux(handler, gw), m), f.limits, slog.NewLogLogger(limiter, slog.LevelWarn))
	fmt.Fprintf(e.stderr, "sluice serve: listening on http://%s (store %s, files in %s)\n", ln.Addr(), path, filesDir)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	// The first Ctrl-C shuts down gracefully, the second (or the end of the grace) cuts off.
	in := newInterrupt(context.WithoutCancel(ctx), e, f.grace, drainSelf, "")
	defer in.stop()
	var serveErr error
	select {
	case <-in.draining:
		fmt.Fprintln(e.stderr, "sluice serve: shutting down")
	case <-ctx.Done():
	case serveErr = <-served:
	}
	shutCtx, cancel := context.WithTimeout(in.ctx, f.grace)
	defer cancel()
	shutErr := hs.Shutdown(shutCtx)
	if serveErr == nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	gwErr := closeGateway(shutCtx, gw)
	closeErr := svc.Close(shutCtx)
	return errors.Join(serveErr, shutErr, gwErr, closeErr)
}

// warnExposed warns when other users may read the store (a SQLite file), its files or their directories:
// they hold every tenant's prompts and answers.
func warnExposed(logger *slog.Logger, store storeurl.Location, filesDir string) {
	var (
		exposed []string
		err     error
	)
	if store.Kind == storeurl.SQLite { // PostgreSQL keeps its own permissions
		exposed, err = sqlite.Exposed(store.Path)
	}
	if fi, serr := os.Stat(filesDir); serr == nil && fi.Mode().Perm()&0o077 != 0 {
		exposed = append(exposed, fmt.Sprintf("%s (%s)", filesDir, fi.Mode().Perm()))
	}
	if err != nil {
		logger.Warn("store permissions", "err", err)
	}
	if len(exposed) > 0 {
		logger.Warn("other users may read the store: chmod 600 the files and 700 the directories",
			"paths", strings.Join(exposed, ", "))
	}
}

// serveStore is what sluice serve needs of a store: what every command needs, and the
// state of the batch service (files, batches, usage, budget ceilings). Both stores have it.
type serveStore interface {
	store
	service.Store
}

var (
	_ serveStore = (*sqlite.Store)(nil)
	_ serveStore = (*postgres.Store)(nil)
)

// openServeStore opens the store of sluice serve (--store, $SLUICE_STORE or the default
// SQLite file) and returns it with its location and where it is, for messages.
func openServeStore(ctx context.Context, e *env, flag string) (serveStore, storeurl.Location, string, error) {
	loc, err := storeLocation(e, flag)
	if err != nil {
		return nil, storeurl.Location{}, "", err
	}
	st, where, err := openLocation(ctx, loc)
	if err != nil {
		return nil, storeurl.Location{}, "", err
	}
	ss, ok := st.(serveStore)
	if !ok {
		_ = st.Close()
		return nil, storeurl.Location{}, "", fmt.Errorf("store %s cannot keep the state of sluice serve", where)
	}
	return ss, loc, where, nil
}

// serveFilesDir is where serve keeps the contents of files: --files-dir, or beside a
// SQLite store, or for a PostgreSQL store "serve-files" in the user's data directory
// (the database keeps no file contents: replicas must be given one shared directory).
func serveFilesDir(e *env, loc storeurl.Location, flag string) (string, error) {
	switch {
	case flag != "":
		return flag, nil
	case loc.Kind == storeurl.SQLite:
		return loc.Path + ".files", nil
	}
	def, err := defaultStorePath(e)
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(def), "serve-files"), nil
}

// loadConfig reads the config file, or makes the one upstream of the flags.
func (f *serveFlags) loadConfig() (*serveConfig, error) {
	if f.config == "" {
		base := f.baseURL
		if base == "" {
			base = simUpstreamName
		}
		return &serveConfig{Upstreams: []upstreamConfig{{Name: "default", BaseURL: base, APIKeyEnv: f.apiKeyEnv}}}, nil
	}
	data, err := os.ReadFile(f.config)
	if err != nil {
		return nil, usageError("config: %v", err)
	}
	var cfg serveConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, usageError("config %s: %v", f.config, err)
	}
	if len(cfg.Upstreams) == 0 {
		return nil, usageError("config %s: no upstreams", f.config)
	}
	for i, u := range cfg.Upstreams {
		if u.Name == "" || u.BaseURL == "" {
			return nil, usageError("config %s: upstream %d needs a name and a base_url", f.config, i+1)
		}
	}
	return &cfg, nil
}

// engines makes one engine per upstream, and its route; closeFn stops the simulators
// among them.
func (f *serveFlags) engines(e *env, st sluice.Store, ups []upstreamConfig, logger *slog.Logger, obs sluice.Observer) ([]service.Route, func(), error) {
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	var out []service.Route
	for _, u := range ups {
		o := jobOptions{
			BaseURL: strings.TrimRight(u.BaseURL, "/"), Sim: u.BaseURL == simUpstreamName, APIKeyEnv: u.APIKeyEnv,
			Concurrency: cmp.Or(u.Concurrency, f.concurrency), RPM: cmp.Or(u.RPM, f.rpm), TPM: cmp.Or(u.TPM, f.tpm),
			MaxAttempts: f.maxAttempts, Timeout: f.timeout.String(),
			Stream: u.Stream, StreamIdleTimeout: u.StreamIdleTimeout,
		}
		if o.APIKeyEnv == "" {
			o.APIKeyEnv = defaultAPIKeyEnv
		}
		if err := o.validate(); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("upstream %s: %w", u.Name, err)
		}
		client, closeFn, err := o.upstream(e, serveSim())
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("upstream %s: %w", u.Name, err)
		}
		closers = append(closers, closeFn)
		cfg := o.engineConfig()
		cfg.Logger = logger
		var closeRec func()
		cfg.Observer, closeRec = withRecorder(e, st, obs) // the dashboard's timeline (ui.go)
		closers = append(closers, closeRec)
		eng, err := sluice.New(st, client, cfg)
		if err != nil {
			closeAll()
			return nil, nil, usageError("upstream %s: %v", u.Name, err)
		}
		out = append(out, service.Route{Name: u.Name, Models: u.Models, Engine: eng})
	}
	return out, closeAll, nil
}

// serveSim is the simulator serve runs over without an upstream: instant answers.
func serveSim() sim.Config { return sim.Config{Seed: 1} }

// keyUsage is one key's line of "sluice serve usage".
type keyUsage struct {
	Key              string  `json:"key"` // the key's name, never the key
	Batches          int64   `json:"batches"`
	Requests         int64   `json:"requests"`   // online requests through the gateway
	CacheHits        int64   `json:"cache_hits"` // of them, answered from its cache at no cost
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	// Unconfirmed is what a server that crashed may have spent beyond its ledgers; it
	// counts against the key's budget.
	UnconfirmedTokens  int64   `json:"unconfirmed_tokens"`
	UnconfirmedCostUSD float64 `json:"unconfirmed_cost_usd"`
	owner              string
}

// usageReport is the --json output of "sluice serve usage".
type usageReport struct {
	PeriodStart time.Time  `json:"period_start"`
	PeriodEnd   time.Time  `json:"period_end"`
	Keys        []keyUsage `json:"keys"`
}

func newServeUsageCmd(e *env) *cobra.Command {
	var (
		store, period string
		resetDay      int
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "List the client keys' usage of sluice serve in the current period, top keys first",
		Long: `usage lists what the batches of each client key of sluice serve used in the current
period (the calendar month by default), most costly first: batches, tokens and cost in USD.
Keys are shown by their names (SLUICE_API_KEYS=name=key,...), or by the first digits of
their hash; the keys themselves are never stored. A batch counts in the period it was
created in.`,
		Example: `  sluice serve usage --store serve.db
  sluice serve usage --period daily --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := service.KeyBudget{Period: service.Period(period), ResetDay: resetDay}
			if b.Period != service.PeriodMonthly && b.Period != service.PeriodDaily {
				return usageError("--period must be monthly or daily, got %q", period)
			}
			if resetDay < 1 || resetDay > 28 {
				return usageError("--reset-day must be 1 to 28, got %d", resetDay)
			}
			return runServeUsage(cmd.Context(), e, store, b, asJSON)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&store, "store", "", "the store of sluice serve: "+storeUsage)
	fs.StringVar(&period, "period", string(service.PeriodMonthly), "the period: monthly or daily")
	fs.IntVar(&resetDay, "reset-day", 1, "the day of the month a monthly period starts on, 1 to 28")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func runServeUsage(ctx context.Context, e *env, store string, b service.KeyBudget, asJSON bool) error {
	st, _, _, err := openServeStore(ctx, e, store)
	if err != nil {
		return err
	}
	defer st.Close()
	from, to := b.Bounds(time.Now())
	rep := usageReport{PeriodStart: from, PeriodEnd: to, Keys: []keyUsage{}}
	err = st.SumUsage(ctx, "", false, from, to, func(owner, name, _ string, u sluice.Usage, cost float64, n, req, hits int64) error {
		if name == "" {
			name = "key-" + owner[:min(8, len(owner))]
		}
		rep.Keys = append(rep.Keys, keyUsage{Key: name, Batches: n, Requests: req, CacheHits: hits, PromptTokens: u.PromptTokens,
			CompletionTokens: u.CompletionTokens, TotalTokens: u.Total(), CostUSD: math.Round(cost*1e6) / 1e6, owner: owner})
		return nil
	})
	if err != nil {
		return err
	}
	for i := range rep.Keys {
		k := &rep.Keys[i]
		tokens, cost, err := st.SumUnconfirmed(ctx, k.owner, from, to)
		if err != nil {
			return err
		}
		k.UnconfirmedTokens, k.UnconfirmedCostUSD = tokens, math.Round(cost*1e6)/1e6
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(e.stdout, "usage from %s to %s (UTC)\n", from.Format(time.DateOnly), to.Format(time.DateOnly))
	if len(rep.Keys) == 0 {
		fmt.Fprintln(e.stdout, "no usage in this period")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KEY\tBATCHES\tREQUESTS\tCACHE HITS\tPROMPT TOKENS\tCOMPLETION TOKENS\tCOST\tUNCONFIRMED TOKENS\tUNCONFIRMED COST\t")
	for _, k := range rep.Keys {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t$%.4f\t%d\t$%.4f\t\n", k.Key, k.Batches, k.Requests, k.CacheHits,
			k.PromptTokens, k.CompletionTokens, k.CostUSD, k.UnconfirmedTokens, k.UnconfirmedCostUSD)
	}
	return tw.Flush()
}

// defaultContextTokens is the context window assumed by default for the budgets of
// requests without max_tokens: 128k, the window of most current models.
const defaultContextTokens = 131072

// parsePrefixes reads --webhook-allow networks.
func parsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, usageError("--webhook-allow %q: not a CIDR network (169.254.0.0/16, fd00::/8)", c)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
