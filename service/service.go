package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/logx"
)

// Server defaults.
const (
	// DefaultMaxLines is the most lines an input file may have, as OpenAI allows.
	DefaultMaxLines = 50_000
	// DefaultMaxBytes is the largest input file, as OpenAI allows.
	DefaultMaxBytes = 200 << 20
	// CompletionWindow is the completion window OpenAI accepts, and the only one the
	// server accepts unless Config.AnyCompletionWindow is set.
	CompletionWindow = "24h"

	maxJSONBody         = 1 << 20 // bytes of a JSON request body
	maxValidationErrors = 100     // errors.data entries kept for a batch that failed validation
)

// Upstream is an engine a batch can run on, and the models it serves.
type Upstream struct {
	// Name identifies the upstream in the batches assigned to it, so that it must stay the
	// same across restarts.
	Name string
	// Models are the models routed to this upstream; empty means every model.
	Models []string
	// Engine sends the requests; every batch on the upstream shares its limits.
	Engine *sluice.Engine
}

func (u *Upstream) serves(model string) bool {
	return len(u.Models) == 0 || slices.Contains(u.Models, model)
}

// Config configures a Server. Store, FilesDir, at least one Upstream and at least one
// key (in Keys or KeyHashes) are required; the zero value of the other fields means
// their default.
type Config struct {
	// Store keeps the ledger and the file and batch objects.
	Store Store
	// FilesDir holds the content of uploaded and output files; New creates it with mode
	// 0700 when it is missing.
	FilesDir string
	// Upstreams are the engines batches run on. A batch runs on the first upstream that
	// serves every model it uses; when several do, on the one with the fewest batches
	// running.
	Upstreams []Upstream
	// KeyHashes are the hex SHA-256 hashes (see HashKey) of the keys clients may present.
	KeyHashes []string
	// Keys are further client keys, with a name for usage reports and a budget per
	// period. A batch created with a key whose budget for the period is spent is refused
	// with 429 insufficient_quota; a running batch whose key's budget runs out is stopped
	// and fails with an insufficient_quota error, keeping what finished.
	Keys []Key
	// Cost prices what batches used, in USD, for the budgets and GET /v1/usage; nil
	// counts tokens only (and MaxCost budgets are refused).
	Cost func(model string, u sluice.Usage) float64
	// Priced reports whether a model has a price. A batch of a key with a USD budget that
	// uses a model with none fails validation with model_not_priced, since the budget
	// could not hold. nil: a model is priced when Cost prices a million tokens above 0.
	Priced func(model string) bool
	// ContextLimit is the most tokens, prompt and output, a request of a model may use:
	// a request without max_tokens reserves it against its key's budget while it fits,
	// then one such request at a time is admitted on its prompt plus the mean output, so
	// a budget is overshot by at most one request's output (sluice.BudgetPool). nil or 0
	// reserves the mean output, which any number of such requests may overshoot.
	ContextLimit func(model string) int64
	// UsageInterval is how often a running batch's usage is recorded and checked against
	// its key's budget (DefaultUsageInterval): a batch may overspend by what it sends in
	// one interval.
	UsageInterval time.Duration
	// Now is the clock of the budget periods; nil means time.Now.
	Now func() time.Time
	// MaxLines and MaxBytes bound an input file (DefaultMaxLines, DefaultMaxBytes).
	MaxLines int64
	MaxBytes int64
	// AnyCompletionWindow accepts any positive Go duration ("90s", "1h") as a batch's
	// completion_window, not only "24h": for tests and for operators who want shorter
	// deadlines.
	AnyCompletionWindow bool
	// Logger receives the server's notices; nil discards them.
	Logger *slog.Logger

	// WebhookURL, when set, is sent a POST of the batch object (as JSON) whenever a batch
	// reaches a terminal status: completed, failed, expired or cancelled. A batch's
	// metadata "webhook_url" (WebhookMetadataKey) overrides it for that batch when
	// BatchWebhooks allows it. Deliveries never hold a batch back; they are not kept
	// across restarts.
	WebhookURL string
	// BatchWebhooks lets clients name a webhook in a batch's metadata. Off by default:
	// it lets any client key make the server POST to any address it can reach,
	// internal ones included.
	BatchWebhooks bool
	// WebhookAllow names networks webhooks may reach although they are link-local or
	// fd00::/8, where clouds serve instance metadata; they are refused otherwise, when a
	// batch is created and again at each connection (so that DNS cannot send a hook
	// there). Loopback and private networks are always allowed.
	WebhookAllow []netip.Prefix
	// WebhookClient sends the webhooks; nil means a client whose attempts time out after
	// 10 s and that checks every address it connects to against WebhookAllow. Redirects
	// are never followed, whichever client. Webhook URLs are logged without credentials
	// or query.
	WebhookClient *http.Client
	// WebhookAttempts bounds the attempts of one delivery (DefaultWebhookAttempts);
	// failures that are not worth retrying (a 4xx other than 408, 409 or 429) end it
	// at once.
	WebhookAttempts int
	// WebhookBackoff is the wait after the first failed attempt, doubled after each
	// further one up to 30 s, with jitter (DefaultWebhookBackoff).
	WebhookBackoff time.Duration
}

// HashKey returns the hex SHA-256 of a client key, the form Config.KeyHashes holds.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (c Config) withDefaults() Config {
	if c.MaxLines == 0 {
		c.MaxLines = DefaultMaxLines
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.WebhookClient == nil {
		c.WebhookClient = webhookClient(c.WebhookAllow)
	} else {
		wc := *c.WebhookClient
		wc.CheckRedirect = noRedirect
		c.WebhookClient = &wc
	}
	if c.WebhookAttempts == 0 {
		c.WebhookAttempts = DefaultWebhookAttempts
	}
	if c.WebhookBackoff == 0 {
		c.WebhookBackoff = DefaultWebhookBackoff
	}
	if c.UsageInterval == 0 {
		c.UsageInterval = DefaultUsageInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("no store")
	case c.FilesDir == "":
		return errors.New("no files directory")
	case len(c.Upstreams) == 0:
		return errors.New("no upstream")
	case len(c.KeyHashes) == 0 && len(c.Keys) == 0:
		return errors.New("no client keys")
	case c.UsageInterval < 0:
		return errors.New("usage interval must not be negative")
	case c.MaxLines < 1 || c.MaxBytes < 1:
		return errors.New("max lines and max bytes must be positive")
	case c.WebhookAttempts < 1 || c.WebhookBackoff < 0:
		return errors.New("webhook attempts must be positive and backoff not negative")
	}
	if c.WebhookURL != "" {
		if err := checkWebhookURL(c.WebhookURL, c.WebhookAllow); err != nil {
			return err
		}
	}
	names := map[string]bool{}
	for _, u := range c.Upstreams {
		if u.Engine == nil {
			return fmt.Errorf("upstream %q has no engine", u.Name)
		}
		if names[u.Name] {
			return fmt.Errorf("two upstreams are named %q", u.Name)
		}
		names[u.Name] = true
	}
	for _, h := range c.KeyHashes {
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return errors.New("a key hash is not a hex SHA-256")
		}
	}
	keyNames := map[string]bool{}
	for _, k := range c.Keys {
		if b, err := hex.DecodeString(k.Hash); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("key %q: hash is not a hex SHA-256", k.Name)
		}
		if k.Name == "" || keyNames[k.Name] {
			return fmt.Errorf("key names must be unique and not empty, got %q", k.Name)
		}
		keyNames[k.Name] = true
		if err := k.Budget.validate(); err != nil {
			return fmt.Errorf("key %q: %w", k.Name, err)
		}
		if k.Budget.MaxCost > 0 && c.Cost == nil {
			return fmt.Errorf("key %q: a cost budget needs a Cost function", k.Name)
		}
	}
	return nil
}

// Server serves the Files and Batches APIs and runs the batches. Create it with New,
// serve Handler, and stop it with Close.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	keys  map[string]bool // key hashes
	named map[string]Key  // Config.Keys by hash

	// ctx is the context of every run; cancel cuts off requests in flight.
	ctx     context.Context
	cancel  context.CancelFunc
	closing chan struct{} // closed by Close: runs drain and batches stay resumable
	once    sync.Once
	wg      sync.WaitGroup // one per batch goroutine
	hooks   sync.WaitGroup // one per webhook delivery; started only by batch goroutines

	// mu serialises the read-modify-write of batch records and guards active.
	mu     sync.Mutex
	active map[string]*activeBatch
	closed bool

	poolMu sync.Mutex
	pools  map[poolKey]*sluice.BudgetPool // a key's budget in one period, shared by its runs
	// session names this server run in the budget reservations (reserve.go).
	session string
}

// New returns a Server and resumes the batches a previous server over the same store
// left validating, in progress, finalizing or cancelling.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := makePrivateDir(cfg.FilesDir); err != nil {
		return nil, fmt.Errorf("serve: files directory: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{
		cfg:     cfg,
		mux:     http.NewServeMux(),
		keys:    map[string]bool{},
		named:   map[string]Key{},
		ctx:     runCtx,
		cancel:  cancel,
		closing: make(chan struct{}),
		active:  map[string]*activeBatch{},
		session: newSession(),
	}
	for _, h := range cfg.KeyHashes {
		s.keys[strings.ToLower(h)] = true
	}
	for _, k := range cfg.Keys {
		k.Hash = strings.ToLower(k.Hash)
		s.keys[k.Hash], s.named[k.Hash] = true, k
	}
	s.routes()
	if err := s.resume(ctx); err != nil {
		s.Close(ctx)
		return nil, fmt.Errorf("serve: %w", err)
	}
	return s, nil
}

// makePrivateDir makes dir, mode 0700 whatever the umask, when it is missing: it holds
// every tenant's prompts and answers.
func makePrivateDir(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Close stops the batches: runs stop dispatching and their requests in flight may finish
// until ctx is done, when they are cut off (they go back to pending). Batches that were
// running stay in_progress in the store, to be resumed by the next server. Webhook
// deliveries still being tried may go on until ctx is done, when they are given up.
// Close returns once every batch goroutine and every delivery has ended. Stop serving
// HTTP before calling it.
func (s *Server) Close(ctx context.Context) error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
	})
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.hooks.Wait() // no delivery starts once the batch goroutines have ended
		s.cfg.WebhookClient.CloseIdleConnections()
		close(done)
	}()
	var err error
	select {
	case <-done:
		// Every run drained: what they spent is in their ledgers and recorded.
		err = s.endSession(ctx)
	case <-ctx.Done():
		err = fmt.Errorf("serve: close: %w", ctx.Err())
		s.cancel()
		<-done
	}
	s.cancel()
	return err
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.handle("POST /v1/files", s.createFile)
	s.handle("GET /v1/files", s.listFiles)
	s.handle("GET /v1/files/{id}", s.getFile)
	s.handle("GET /v1/files/{id}/content", s.fileContent)
	s.handle("DELETE /v1/files/{id}", s.deleteFile)
	s.handle("POST /v1/batches", s.createBatch)
	s.handle("GET /v1/batches", s.listBatches)
	s.handle("GET /v1/batches/{id}", s.getBatch)
	s.handle("POST /v1/batches/{id}/cancel", s.cancelBatch)
	s.handle("GET /v1/usage", s.getUsage)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "unknown_url",
			msg: fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, r.URL.Path)})
	})
}

// handlerFunc is an API handler: it serves the client with the given owner (the hash of
// its key) and returns an error to be answered in the OpenAI error format.
type handlerFunc func(w http.ResponseWriter, r *http.Request, owner string) error

// handle registers h behind the key check.
func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		owner, ok := s.authenticate(r)
		if !ok {
			writeError(w, errUnauthorized)
			return
		}
		if err := h(w, r, owner); err != nil {
			if errors.Is(err, errTooSlow) {
				s.cfg.Logger.Info("client too slow", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				err = &apiError{status: http.StatusRequestTimeout, typ: "invalid_request_error", code: "request_timeout",
					msg: "The request body arrived too slowly."}
			}
			switch api := asAPIError(err); {
			case api.status < 500:
			case r.Context().Err() != nil || logx.ClientGone(err):
				// The client's doing (it hung up, or cut its upload short): not the server's.
				s.cfg.Logger.Debug("client went away", "method", r.Method, "path", r.URL.Path, "err", err)
			default:
				s.cfg.Logger.Error("serve", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, err)
		}
	})
}

// authenticate returns the hash of the request's bearer key when it is a client key.
func (s *Server) authenticate(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	scheme, key, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	h := HashKey(strings.TrimSpace(key))
	return h, s.keys[h]
}

// now is the time as the API reports it: Unix seconds.
func now() int64 { return time.Now().Unix() }
