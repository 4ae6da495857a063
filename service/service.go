package service

import (
	"cmp"
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
)

// Service defaults.
const (
	// DefaultMaxLines is the most lines an input file may have, as OpenAI allows.
	DefaultMaxLines = 50_000
	// DefaultMaxBytes is the largest input file, as OpenAI allows.
	DefaultMaxBytes = 200 << 20
	// DefaultLeaseTTL is how long a server's runner lease on a batch lasts unless renewed.
	DefaultLeaseTTL = 15 * time.Second
	// CompletionWindow is the completion window OpenAI accepts, and the only one the
	// server accepts unless Config.AnyCompletionWindow is set.
	CompletionWindow = "24h"

	maxValidationErrors = 100 // errors.data entries kept for a batch that failed validation
)

// Config configures a Service. Store, FilesDir, at least one Route and at least one
// key (in Keys or KeyHashes) are required; the zero value of the other fields means
// their default.
type Config struct {
	// Store keeps the ledger and the file and batch objects.
	Store Store
	// FilesDir holds the content of uploaded and output files; New creates it with mode
	// 0700 when it is missing.
	FilesDir string
	// Routes are the engines batches run on. A batch runs on the first route that
	// serves every model it uses; when several do, on the one with the fewest batches
	// running.
	Routes []Route
	// KeyHashes are the hex SHA-256 hashes (see HashKey) of the keys clients may present.
	KeyHashes []string
	// Keys are further client keys, with a name for usage reports and a budget per
	// period. A batch created with a key whose budget for the period is spent is refused
	// with 429 insufficient_quota; a running batch whose key's budget runs out is stopped
	// and fails with an insufficient_quota error, keeping what finished.
	Keys []Key
	// AdminKeyHashes are the hex SHA-256 hashes of operator keys: Authenticate reports
	// them as admin (for the dashboard); they are not client keys.
	AdminKeyHashes []string
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
	// Now is the clock of the budget periods; nil means Clock.Now.
	Now func() time.Time
	// Clock is the time of runner leases, usage checks and completion windows; nil means
	// the system clock.
	Clock Clock
	// LeaseTTL is how long a server's hold on a batch it runs (its runner lease, in the
	// store) lasts unless renewed (DefaultLeaseTTL). A server renews its leases every
	// LeaseTTL/3; the batches of one that died are taken by another within about
	// 4/3 LeaseTTL, and those of one that closed at once, or of one named by Ended.
	LeaseTTL time.Duration
	// Session names this server run in the store, as the holder of its leases and in its
	// budget reservations; it must be unique among the runs of every server on the store.
	// "" draws one at random.
	Session string
	// Ended names a server run known to have ended with its process (sluice serve: the
	// run that held, before this one, the lock file it took beside the store): its leases
	// are dropped as New starts, so that its batches resume at once rather than after
	// LeaseTTL, and its budget reservations are settled. Leases held by other runs are
	// left alone.
	Ended string
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
	// WebhookBackoff is the backoff base of webhook deliveries: the most the wait after
	// the first failed attempt may be, doubled after each further one up to 30 s, with
	// full jitter (sluice.Backoff; DefaultWebhookBackoff).
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
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Now == nil {
		c.Now = c.Clock.Now
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("no store")
	case c.FilesDir == "":
		return errors.New("no files directory")
	case len(c.Routes) == 0:
		return errors.New("no upstream")
	case len(c.KeyHashes) == 0 && len(c.Keys) == 0:
		return errors.New("no client keys")
	case c.UsageInterval < 0:
		return errors.New("usage interval must not be negative")
	case c.LeaseTTL < 3*time.Millisecond:
		return errors.New("lease ttl must be at least 3ms")
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
	for _, u := range c.Routes {
		if u.Engine == nil {
			return fmt.Errorf("upstream %q has no engine", u.Name)
		}
		if names[u.Name] {
			return fmt.Errorf("two upstreams are named %q", u.Name)
		}
		names[u.Name] = true
	}
	for _, h := range slices.Concat(c.KeyHashes, c.AdminKeyHashes) {
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

// Service runs the Batch API: files, batches and their lifecycle, per-key budgets and
// usage, webhooks. Create it with New and stop it with Close; its methods are safe for
// concurrent use. Every method that serves a client takes the tenant, the hash of the
// client's key (Authenticate), and sees only that tenant's objects.
type Service struct {
	cfg   Config
	keys  map[string]bool // client key hashes
	admin map[string]bool // admin key hashes
	named map[string]Key  // Config.Keys by hash

	// ctx is the context of every run; cancel cuts off requests in flight.
	ctx     context.Context
	cancel  context.CancelFunc
	closing chan struct{} // closed by Close: runs drain and batches stay resumable
	once    sync.Once
	wg      sync.WaitGroup // one per batch goroutine
	hooks   sync.WaitGroup // one per webhook delivery; started only by batch goroutines

	// batchLocks serialise the read-modify-write of one batch's record (a cancel
	// arriving while the batch moves on). Batches that are not the same never wait for
	// each other. A file's deletion needs no lock: see DeleteFile.
	batchLocks keyedMutex

	// mu guards active and closed.
	mu     sync.Mutex
	active map[string]*activeBatch
	closed bool

	poolMu sync.Mutex
	pools  map[poolKey]*sluice.BudgetPool // a key's budget in one period, shared by its runs
	// session names this server run in the budget reservations (reserve.go) and as the
	// holder of its batches' runner leases (replica.go).
	session string
}

// New returns a Service and resumes the batches a previous one over the same store left
// validating, in progress, finalizing or cancelling, unless another live server holds
// them (Config.LeaseTTL).
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := makePrivateDir(cfg.FilesDir); err != nil {
		return nil, fmt.Errorf("serve: files directory: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Service{
		cfg:     cfg,
		keys:    map[string]bool{},
		admin:   map[string]bool{},
		named:   map[string]Key{},
		ctx:     runCtx,
		cancel:  cancel,
		closing: make(chan struct{}),
		active:  map[string]*activeBatch{},
		session: cmp.Or(cfg.Session, newSession()),
	}
	for _, h := range cfg.KeyHashes {
		s.keys[strings.ToLower(h)] = true
	}
	for _, h := range cfg.AdminKeyHashes {
		s.admin[strings.ToLower(h)] = true
	}
	for _, k := range cfg.Keys {
		k.Hash = strings.ToLower(k.Hash)
		s.keys[k.Hash], s.named[k.Hash] = true, k
	}
	err := s.dropEnded(ctx, cfg.Ended)
	if err == nil {
		err = s.holdSession(ctx)
	}
	if err == nil {
		err = s.resume(ctx)
	}
	if err != nil {
		s.Close(ctx)
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.wg.Add(1)
	go s.keep()
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

// Close stops the batches: runs stop dispatching and their requests in flight may finish
// until ctx is done, when they are cut off (they go back to pending). Batches that were
// running stay in_progress in the store, to be resumed by the next server. Webhook
// deliveries still being tried may go on until ctx is done, when they are given up.
// Close returns once every batch goroutine and every delivery has ended. Stop serving
// HTTP before calling it.
func (s *Service) Close(ctx context.Context) error {
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

// Authenticate returns the tenant of a client key (its hash) and whether the key is a
// client key or an admin key (Config.AdminKeyHashes). An admin key is not a tenant: it
// may see every tenant's batches where an adapter allows it (the dashboard), but it
// does not create files or batches unless it is a client key too.
func (s *Service) Authenticate(key string) (tenant string, client, admin bool) {
	h := HashKey(key)
	return h, s.keys[h], s.admin[h]
}

// Limits are the bounds the service puts on an input file: the most lines and bytes.
func (s *Service) Limits() (maxLines, maxBytes int64) { return s.cfg.MaxLines, s.cfg.MaxBytes }

// now is the time as the API reports it, on the service's clock: Unix seconds.
func (s *Service) now() int64 { return s.cfg.Clock.Now().Unix() }
