package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/batch"
	"github.com/sluice-llm/sluice/internal/jsonl"
	"github.com/sluice-llm/sluice/metrics"
	"github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/sim"
)

const (
	defaultBaseURL   = "https://api.openai.com/v1"
	defaultAPIKeyEnv = "OPENAI_API_KEY"
	defaultGrace     = 30 * time.Second
	userAgent        = "sluice"
	// simURL is the simulator's base URL in messages: requests to it never leave the
	// process, so the host is never resolved.
	simURL = "http://sim.sluice.invalid/v1"
)

// jobOptions are a run's settings, saved with the job (never the key itself) so that a
// resume runs the same way.
type jobOptions struct {
	Input     string `json:"input"`
	InputSize int64  `json:"input_size"`
	InputHead string `json:"input_head"` // sha256 of the input's first 64 KiB
	// InputSHA256 is the sha256 of the whole input as given (compressed, if it was).
	InputSHA256 string `json:"input_sha256,omitempty"`
	// Spool is the copy of an input read from a pipe, which the job reads and resumes from.
	Spool string `json:"spool,omitempty"`
	// MaxLineBytes bounds an input line (jsonl.DefaultMaxLine when 0).
	MaxLineBytes int    `json:"max_line_bytes,omitempty"`
	Output       string `json:"output"`
	Errors       string `json:"errors,omitempty"`

	BaseURL   string `json:"base_url"`
	Sim       bool   `json:"sim,omitempty"` // the built-in simulator, started in-process
	APIKeyEnv string `json:"api_key_env"`

	Concurrency int     `json:"concurrency"`
	RPM         float64 `json:"rpm,omitempty"`
	TPM         float64 `json:"tpm,omitempty"`
	MaxAttempts int     `json:"max_attempts"`
	Timeout     string  `json:"timeout"`
	// Stream sends requests streamed (--stream); StreamIdleTimeout (a Go duration) cuts
	// off a stream that sends nothing for that long.
	Stream            bool   `json:"stream,omitempty"`
	StreamIdleTimeout string `json:"stream_idle_timeout,omitempty"`

	MaxCost   float64 `json:"max_cost,omitempty"`   // USD over the whole job; 0: no cap
	MaxTokens int64   `json:"max_tokens,omitempty"` // tokens over the whole job; 0: no cap

	// Mode is how the job runs: modeOnline, modeBatch or modeHybrid. The rest are the
	// settings of the Batch API modes.
	Mode         string            `json:"mode,omitempty"`
	BatchBaseURL string            `json:"batch_base_url,omitempty"` // the Batch API's base URL when it is not BaseURL
	PartLines    int64             `json:"part_lines,omitempty"`
	PartBytes    int64             `json:"part_bytes,omitempty"`
	Window       string            `json:"completion_window,omitempty"`
	MaxRounds    int               `json:"max_rounds,omitempty"`
	FinishOnline bool              `json:"finish_online,omitempty"`
	KeepFiles    bool              `json:"keep_files,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	// Deadline is when a hybrid job must be done (RFC 3339), fixed when it starts; Poll,
	// Reserve and Latency (Go durations) shape when it goes online.
	Deadline string `json:"deadline,omitempty"`
	Poll     string `json:"poll,omitempty"`
	Reserve  string `json:"reserve,omitempty"`
	Latency  string `json:"latency,omitempty"`
}

// runFlags are the flags shared by run and resume.
type runFlags struct {
	opts     jobOptions
	batch    batchFlags
	timeout  time.Duration
	store    string
	prices   string
	grace    time.Duration
	jsonOut  bool
	progress string
	logEvery time.Duration
	fresh    bool
	// confirmCost asks before running a file whose worst case is above it (USD); yes
	// answers for the user.
	confirmCost float64
	yes         bool
	simConfig   sim.Config
	// retryFailed sends a job's failed requests again (run and resume).
	retryFailed bool
	// forceOutput lets a job overwrite an output file another job wrote last.
	forceOutput bool
	// observe is --metrics-addr and the like (observe.go); speeds keeps the run's time to
	// first token and output speed for the report.
	observe observeFlags
	speeds  *metrics.Speeds
}

func (f *runFlags) register(fs *pflag.FlagSet, withOutput bool) {
	f.simConfig = demoSim()
	if withOutput {
		fs.StringVarP(&f.opts.Output, "output", "o", "", "write results here (Batch API output format); default INPUT with .results.jsonl")
		fs.StringVar(&f.opts.Errors, "errors", "", "also write failed requests here (Batch API error file format)")
		fs.BoolVar(&f.fresh, "new", false, "start a new job even if this command has run before")
		fs.BoolVar(&f.forceOutput, "force-output", false, "overwrite the output file even when another job of the store wrote it last")
		fs.Float64Var(&f.confirmCost, "confirm-cost", 0, "estimate the file first and ask before running it if its worst case is above this many USD")
		fs.BoolVar(&f.yes, "yes", false, "with --confirm-cost: run without asking (needed when stdin is not a terminal)")
	}
	fs.IntVar(&f.opts.MaxLineBytes, "max-line-bytes", jsonl.DefaultMaxLine, "longest input line accepted, in bytes; a longer one becomes an error line")
	fs.StringVar(&f.opts.BaseURL, "base-url", "", "the upstream's base URL (default $OPENAI_BASE_URL or "+defaultBaseURL+")")
	fs.StringVar(&f.opts.APIKeyEnv, "api-key-env", defaultAPIKeyEnv, "the environment variable that holds the upstream's API key")
	fs.BoolVar(&f.opts.Sim, "sim", false, "send to the built-in simulator, started in-process (no key needed)")
	fs.IntVarP(&f.opts.Concurrency, "concurrency", "c", sluice.DefaultConcurrency, "most requests in flight at once")
	fs.Float64Var(&f.opts.RPM, "rpm", 0, "cap on requests per minute (default: learn the upstream's limit)")
	fs.Float64Var(&f.opts.TPM, "tpm", 0, "cap on tokens per minute (default: learn the upstream's limit)")
	fs.IntVar(&f.opts.MaxAttempts, "max-attempts", sluice.DefaultMaxAttempts, "attempts per request before it fails")
	fs.Float64Var(&f.opts.MaxCost, "max-cost", 0, "stop before the job's cost in USD would pass this (resume with a higher one to go on)")
	fs.Int64Var(&f.opts.MaxTokens, "max-tokens", 0, "stop before the job's tokens would pass this")
	fs.DurationVar(&f.timeout, "timeout", sluice.DefaultTimeout, "timeout for one attempt")
	fs.StringVar(&f.store, "store", "", storeUsage)
	fs.StringVar(&f.prices, "prices", "", "a prices file (sluice's YAML/JSON or LiteLLM's JSON) overriding the built-in table")
	fs.DurationVar(&f.grace, "grace", defaultGrace, "after Ctrl-C, how long requests in flight may finish before they are cut off")
	fs.BoolVar(&f.jsonOut, "json", false, "print the final report as JSON")
	fs.Var(newChoice(&f.progress, "auto", "auto", "bar", "log", "none"), "progress", "progress display: auto, bar, log or none")
	fs.DurationVar(&f.logEvery, "log-interval", 10*time.Second, "with --progress log, how often to print a line")
}

// registerHybrid adds the flags of sluice run --mode hybrid.
func (f *runFlags) registerHybrid(fs *pflag.FlagSet) {
	fs.StringVar(&f.batch.mode, "mode", "online", "online: every request online; hybrid: through the provider's Batch API (half price), online before --deadline")
	fs.StringVar(&f.batch.deadline, "deadline", "", "with --mode hybrid: when every request must be done, as a duration from the first run (6h) or a time (RFC 3339)")
	fs.DurationVar(&f.batch.reserve, "reserve", batch.DefaultReserve, "with --mode hybrid: time kept in hand beyond the estimated online run")
	fs.DurationVar(&f.batch.latency, "latency", 0, "with --mode hybrid: one online request's typical latency, for the estimate of the online run (default: the median of earlier runs against the upstream, else 5s)")
	f.batch.register(fs, &f.opts)
}

// merge overrides saved options with the flags the user set on this command line.
func (f *runFlags) merge(fs *pflag.FlagSet, saved jobOptions) jobOptions {
	o := saved
	set := func(name string, apply func()) {
		if fs.Changed(name) {
			apply()
		}
	}
	set("output", func() { o.Output = f.opts.Output })
	set("errors", func() { o.Errors = f.opts.Errors })
	set("base-url", func() { o.BaseURL = f.opts.BaseURL })
	set("api-key-env", func() { o.APIKeyEnv = f.opts.APIKeyEnv })
	set("sim", func() { o.Sim = f.opts.Sim })
	set("concurrency", func() { o.Concurrency = f.opts.Concurrency })
	set("rpm", func() { o.RPM = f.opts.RPM })
	set("tpm", func() { o.TPM = f.opts.TPM })
	set("max-attempts", func() { o.MaxAttempts = f.opts.MaxAttempts })
	set("timeout", func() { o.Timeout = f.timeout.String() })
	set("stream", func() { o.Stream = f.opts.Stream })
	set("stream-idle-timeout", func() { o.StreamIdleTimeout = f.observe.streamIdle.String() })
	set("max-cost", func() { o.MaxCost = f.opts.MaxCost })
	set("max-tokens", func() { o.MaxTokens = f.opts.MaxTokens })
	set("max-line-bytes", func() { o.MaxLineBytes = f.opts.MaxLineBytes })
	return o
}

func (o jobOptions) validate() error {
	switch {
	case o.Concurrency < 1:
		return usageError("--concurrency must be at least 1")
	case o.RPM < 0 || o.TPM < 0:
		return usageError("--rpm and --tpm must not be negative")
	case o.MaxAttempts < 1:
		return usageError("--max-attempts must be at least 1")
	case o.MaxCost < 0 || o.MaxTokens < 0:
		return usageError("--max-cost and --max-tokens must not be negative")
	case o.MaxLineBytes < 0:
		return usageError("--max-line-bytes must not be negative")
	}
	if d, err := time.ParseDuration(o.Timeout); err != nil || d <= 0 {
		return usageError("--timeout must be a positive duration, got %q", o.Timeout)
	}
	if _, err := o.streamIdle(); err != nil {
		return err
	}
	if !o.Sim {
		return checkBaseURL("--base-url", o.BaseURL)
	}
	return nil
}

// checkBaseURL checks that the value of flag is an http or https URL.
func checkBaseURL(flag, base string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError("%s must be an http or https URL, got %q", flag, base)
	}
	return nil
}

// engineConfig turns options into the engine's configuration.
func (o jobOptions) engineConfig() sluice.Config {
	timeout, _ := time.ParseDuration(o.Timeout)
	return sluice.Config{
		Concurrency: o.Concurrency,
		RPM:         o.RPM,
		TPM:         o.TPM,
		MaxAttempts: o.MaxAttempts,
		Timeout:     timeout,
		Budget:      sluice.Budget{MaxCost: o.MaxCost, MaxTokens: o.MaxTokens},
	}
}

// upstream connects to the job's upstream. With Sim it builds the built-in simulator
// in-process (no sockets: requests go through its in-memory transport); close stops it.
func (o jobOptions) upstream(e *env, simCfg sim.Config) (up *openai.Client, closeFn func(), err error) {
	if o.Sim {
		s := sim.New(simCfg)
		idle, _ := o.streamIdle()
		client, err := openai.New(openai.Config{
			BaseURL:    simURL,
			HTTPClient: &http.Client{Transport: s.Transport()},
			UserAgent:  userAgent,
			Stream:     o.Stream, StreamIdleTimeout: idle,
		})
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		return client, s.Close, nil
	}
	key := e.getenv(o.APIKeyEnv)
	if key == "" && isOpenAI(o.BaseURL) {
		return nil, nil, usageError("no API key: set %s (or name another variable with --api-key-env), or try --sim", o.APIKeyEnv)
	}
	idle, _ := o.streamIdle()
	client, err := openai.New(openai.Config{
		BaseURL:    o.BaseURL,
		APIKey:     key,
		HTTPClient: &http.Client{Transport: openai.NewTransportFor(o.BaseURL, o.Concurrency)},
		UserAgent:  userAgent,
		Stream:     o.Stream, StreamIdleTimeout: idle,
	})
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	return client, func() {}, nil
}

func isOpenAI(base string) bool {
	u, err := url.Parse(base)
	return err == nil && u.Host == "api.openai.com"
}

// fingerprint identifies "the same command": the same input, upstream and output.
func (o jobOptions) fingerprint() string {
	h := sha256.New()
	input := o.Input
	if o.Spool != "" { // a stream: the same content piped again is the same job
		input = "sha256:" + o.InputSHA256
	}
	for _, s := range []string{input, o.BaseURL, fmt.Sprint(o.Sim), o.Output} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if o.Mode != modeOnline { // online jobs keep the fingerprints they had before modes
		h.Write([]byte("mode=" + o.Mode))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func decodeOptions(job *sluice.Job) (jobOptions, error) {
	var o jobOptions
	if err := json.Unmarshal(job.Options, &o); err != nil {
		return o, fmt.Errorf("job %s: read its options: %w", job.ID, err)
	}
	return o, nil
}

// defaultStorePath is the SQLite file in the user's data directory ($XDG_DATA_HOME/sluice,
// ~/.local/share/sluice, ~/Library/Application Support/sluice, %LocalAppData%\sluice).
func defaultStorePath(e *env) (string, error) {
	if d := e.getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "sluice", "sluice.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the store: %w (set --store or $SLUICE_STORE)", err)
	}
	switch runtime.GOOS {
	case "darwin":
		return filepath.Join(home, "Library", "Application Support", "sluice", "sluice.db"), nil
	case "windows":
		if d := e.getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "sluice", "sluice.db"), nil
		}
	}
	return filepath.Join(home, ".local", "share", "sluice", "sluice.db"), nil
}

// exactArgs is cobra.ExactArgs with sluice's usage exit status.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError("expected %s, got %d arguments", what, len(args))
		}
		return nil
	}
}

// budgetFlags names the flags of the caps that are set, for a hint to raise them.
func budgetFlags(maxCost float64, maxTokens int64) string {
	switch {
	case maxCost > 0 && maxTokens > 0:
		return "--max-cost/--max-tokens"
	case maxTokens > 0:
		return "--max-tokens"
	}
	return "--max-cost"
}
