package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonw"
)

// Defaults, as OpenAI's Batch API limits them.
const (
	DefaultMaxLines  = 50_000    // requests per part
	DefaultMaxBytes  = 200 << 20 // bytes of a part's input file
	DefaultWindow    = "24h"     // completion window
	DefaultMaxRounds = 3         // submissions of the same request

	pageSize     = 1000 // pending requests read per query
	outcomeBatch = 512  // outcomes per CompletePart transaction
	lookupPages  = 5    // pages of the provider's batch list searched for a lost batch id
)

// Config configures a Runner. The zero value of every field means its default.
type Config struct {
	// MaxLines and MaxBytes bound one part's input file (DefaultMaxLines,
	// DefaultMaxBytes): the provider's limits.
	MaxLines int64
	MaxBytes int64
	// Window is the completion window batches are created with (DefaultWindow).
	Window string
	// MaxRounds is how many times a request is submitted before it is given up to the
	// caller (DefaultMaxRounds). A batch the provider refuses for capacity (the
	// enqueued-token limit) spends no round of its requests while other parts of its
	// round are accepted. Each round a request spends counts in its Attempts.
	MaxRounds int
	// Metadata is added to every batch's metadata, beside sluice_job and sluice_part.
	Metadata map[string]string
	// KeepFiles keeps a part's input file at the provider once its results are collected;
	// by default it is deleted (the ledger can make it again), so that a large job does
	// not fill the account's file storage. Output and error files are always kept.
	KeepFiles bool
	// Logger receives notices (a failed poll that the next step retries); nil discards.
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxLines == 0 {
		c.MaxLines = DefaultMaxLines
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Window == "" {
		c.Window = DefaultWindow
	}
	if c.MaxRounds == 0 {
		c.MaxRounds = DefaultMaxRounds
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.MaxLines < 1:
		return fmt.Errorf("lines per part must be at least 1, got %d", c.MaxLines)
	case c.MaxBytes < 1:
		return fmt.Errorf("bytes per part must be at least 1, got %d", c.MaxBytes)
	case c.MaxRounds < 1:
		return fmt.Errorf("rounds must be at least 1, got %d", c.MaxRounds)
	}
	return nil
}

// Runner runs jobs through a provider's Batch API: it splits a job's pending requests
// into parts, uploads them, creates a batch for each, polls them, and collects their
// results into the ledger, resubmitting only what did not finish. All its state is in
// the store, so a Runner in a new process carries on where another stopped.
//
// Methods that create parts or batches (Submit, Step with submit, Cancel) must not run
// for one job in two processes at once; Refresh may.
type Runner struct {
	store Store
	api   API
	cfg   Config

	// stats keeps each job's last Stats, which cost a scan of the job's ledger, with the
	// parts it was read at: a step that changed no part reuses it.
	mu    sync.Mutex
	stats map[string]cachedStats

	sleep func(context.Context, time.Duration) error // between a watch's steps; tests replace it
}

type cachedStats struct {
	parts, collected int
	stats            *sluice.Stats
}

// jobStats is the job's Stats, read again only when its parts changed since the last
// read (here or in another process: the parts are read from the store) or changed was
// called.
func (r *Runner) jobStats(ctx context.Context, jobID string, parts []*sluice.Part) (*sluice.Stats, error) {
	key := cachedStats{parts: len(parts)}
	for _, p := range parts {
		if p.Collected {
			key.collected++
		}
	}
	r.mu.Lock()
	c, ok := r.stats[jobID]
	r.mu.Unlock()
	if ok && c.parts == key.parts && c.collected == key.collected {
		return c.stats, nil
	}
	stats, err := r.store.Stats(ctx, jobID)
	if err != nil {
		return nil, err
	}
	key.stats = stats
	r.mu.Lock()
	r.stats[jobID] = key
	r.mu.Unlock()
	return stats, nil
}

// changed forgets the job's Stats: its ledger changed other than through its parts.
func (r *Runner) changed(jobID string) {
	r.mu.Lock()
	delete(r.stats, jobID)
	r.mu.Unlock()
}

// New returns a Runner keeping its state in store and sending through api.
func New(store Store, api API, cfg Config) (*Runner, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	return &Runner{store: store, api: api, cfg: cfg, stats: map[string]cachedStats{}}, nil
}

// Progress is where a job run through the Batch API stands.
type Progress struct {
	Parts []*sluice.Part
	// Round is the latest round submitted (0 before the first).
	Round int
	Stats *sluice.Stats
	// Active counts the parts whose results are not collected yet.
	Active int
	// Leftover counts the pending requests whose rounds are spent, once no other request
	// is left to submit: the caller may run them online.
	Leftover int64
	// Done is set when every request is final.
	Done bool
	// Warnings are the failures of this step that the next one retries (a poll that
	// timed out, say).
	Warnings []string
	// Unreachable is set when this step called the provider and no call got an answer:
	// the last such failure (connection refused, unknown host, a timeout).
	Unreachable error
}

// Submit splits the job's pending requests into a new round of parts and creates their
// batches. A part the provider refuses is recorded with its message, and its requests are
// resubmitted by the next round. It returns the parts it made.
func (r *Runner) Submit(ctx context.Context, job *sluice.Job) ([]*sluice.Part, error) {
	parts, err := r.store.Parts(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	round := 1
	if len(parts) > 0 {
		round = parts[len(parts)-1].Round + 1
	}
	made, err := r.split(ctx, job, round)
	for _, p := range made {
		if err != nil {
			break
		}
		err = r.start(ctx, p, false)
	}
	return made, err
}

// group is a part being assembled: requests of one endpoint and model.
type group struct {
	endpoint, model string
	lines           []int64
	bytes           int64
}

// split makes the parts of a round from the job's pending requests, in line order,
// starting a new part of a group when the next request would pass a limit.
func (r *Runner) split(ctx context.Context, job *sluice.Job, round int) ([]*sluice.Part, error) {
	groups := map[string]*group{}
	var made []*sluice.Part
	flush := func(g *group) error {
		if len(g.lines) == 0 {
			return nil
		}
		p := &sluice.Part{Round: round, Endpoint: g.endpoint, Model: g.model, Requests: int64(len(g.lines)), Bytes: g.bytes}
		p.JobID = job.ID
		if err := r.store.CreatePart(ctx, p, g.lines); err != nil {
			return err
		}
		made = append(made, p)
		g.lines, g.bytes = nil, 0
		return nil
	}
	var order []*group // flush groups in the order they were first seen
	after := int64(0)
	for {
		var items []sluice.Item
		err := r.store.Pending(ctx, job.ID, after, pageSize, func(it *sluice.Item) error {
			items = append(items, *it)
			return nil
		})
		if err != nil {
			return made, fmt.Errorf("split job %s: %w", job.ID, err)
		}
		if len(items) == 0 {
			break
		}
		for i := range items {
			it := &items[i]
			after = it.Line
			if it.Attempts >= r.cfg.MaxRounds {
				continue // its rounds are spent: left to the caller
			}
			key := it.Request.URL + "\x00" + it.Estimate.Model
			g := groups[key]
			if g == nil {
				g = &group{endpoint: it.Request.URL, model: it.Estimate.Model}
				groups[key] = g
				order = append(order, g)
			}
			n := int64(len(encodeLine(nil, it)))
			if int64(len(g.lines)) >= r.cfg.MaxLines || (len(g.lines) > 0 && g.bytes+n > r.cfg.MaxBytes) {
				if err := flush(g); err != nil {
					return made, fmt.Errorf("split job %s: %w", job.ID, err)
				}
			}
			g.lines = append(g.lines, it.Line)
			g.bytes += n
		}
	}
	for _, g := range order {
		if err := flush(g); err != nil {
			return made, fmt.Errorf("split job %s: %w", job.ID, err)
		}
	}
	return made, nil
}

// encodeLine appends the Batch API input line of it to dst.
func encodeLine(dst []byte, it *sluice.Item) []byte {
	dst = append(dst, `{"custom_id":`...)
	dst = jsonw.AppendString(dst, it.Request.CustomID)
	dst = append(dst, `,"method":`...)
	dst = jsonw.AppendString(dst, it.Request.Method)
	dst = append(dst, `,"url":`...)
	dst = jsonw.AppendString(dst, it.Request.URL)
	dst = append(dst, `,"body":`...)
	if len(it.Request.Body) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, it.Request.Body...)
	}
	return append(dst, "}\n"...)
}

// start uploads a part's input file and creates its batch, whichever of the two is not
// done yet. lookup first searches the provider's batches for one a crash kept this
// Runner from recording. A provider's refusal is recorded in the part; a failure that
// may pass is returned and the part stays as it was, for the next step to retry.
func (r *Runner) start(ctx context.Context, p *sluice.Part, lookup bool) error {
	if p.FileID == "" {
		f, err := r.upload(ctx, p)
		if err != nil {
			return r.refused(ctx, p, "upload", err)
		}
		p.FileID = f.ID
		if err := r.store.UpdatePart(ctx, p); err != nil {
			return err
		}
		lookup = false // a file just uploaded has no batch yet
	}
	if p.BatchID != "" {
		return nil
	}
	var b *sluice.Batch
	if lookup {
		found, err := r.lookup(ctx, p)
		if err != nil {
			return fmt.Errorf("part %d: find its batch: %w", p.Number, err)
		}
		b = found
	}
	if b == nil {
		meta := map[string]string{"sluice_job": p.JobID, "sluice_part": strconv.Itoa(p.Number)}
		for k, v := range r.cfg.Metadata {
			meta[k] = v
		}
		created, err := r.api.CreateBatch(ctx, p.FileID, p.Endpoint, r.cfg.Window, meta)
		if err != nil {
			return r.refused(ctx, p, "create batch", err)
		}
		b = created
	}
	r.apply(p, b)
	return r.store.UpdatePart(ctx, p)
}

// upload streams a part's input file from the ledger to the provider.
func (r *Runner) upload(ctx context.Context, p *sluice.Part) (*sluice.File, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf []byte
		err := r.store.PartItems(ctx, p.JobID, p.Number, func(it *sluice.Item) error {
			buf = encodeLine(buf[:0], it)
			_, err := pw.Write(buf)
			return err
		})
		pw.CloseWithError(err)
	}()
	name := fmt.Sprintf("sluice-%s-part-%d.jsonl", p.JobID, p.Number)
	f, err := r.api.UploadFile(ctx, name, pr)
	pr.CloseWithError(errors.New("upload ended"))
	<-done
	return f, err
}

// refused records a provider's refusal of a part (a non-retryable answer) and returns
// nil, or returns err as it is when it may pass or concerns every part (a rejected key).
func (r *Runner) refused(ctx context.Context, p *sluice.Part, op string, err error) error {
	var ue *sluice.UpstreamError
	if errors.As(err, &ue) && noBatchAPI(ue) {
		return fmt.Errorf("part %d: %w (%s: %w)", p.Number, ErrNoBatchAPI, op, err)
	}
	if !errors.As(err, &ue) || ue.Retryable() || errors.Is(err, sluice.ErrAuth) ||
		ue.StatusCode == 401 || ue.StatusCode == 403 {
		return fmt.Errorf("part %d: %w", p.Number, err)
	}
	p.Status = sluice.BatchFailed
	p.Error = op + " refused: " + ue.Message
	return r.store.UpdatePart(ctx, p)
}

// ErrNotIngested means a job's input is not all in the ledger yet (Ingest it first):
// submitting part of it would end the job early.
var ErrNotIngested = errors.New("the job's input is not all in the ledger")

// ErrNoBatchAPI means the provider answered the Files or Batches API with "not found":
// it has none (put sluice serve in front of it).
var ErrNoBatchAPI = errors.New("the upstream has no Batch API")

// noBatchAPI reports whether ue is a provider's way of saying it has no such endpoint.
func noBatchAPI(ue *sluice.UpstreamError) bool {
	return ue.StatusCode == 404 || ue.StatusCode == 405 || ue.StatusCode == 501
}

// lookup searches the provider's newest batches for one made from the part's file. A
// provider that cannot list batches is taken to have none from it.
func (r *Runner) lookup(ctx context.Context, p *sluice.Part) (*sluice.Batch, error) {
	after := ""
	for range lookupPages {
		bs, more, err := r.api.ListBatches(ctx, after, 100)
		var ue *sluice.UpstreamError
		if errors.As(err, &ue) && noBatchAPI(ue) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for i := range bs {
			if bs[i].InputFileID == p.FileID {
				return &bs[i], nil
			}
		}
		if !more || len(bs) == 0 {
			return nil, nil
		}
		after = bs[len(bs)-1].ID
	}
	return nil, nil
}

// statusAliases are spellings of batch statuses that OpenAI-compatible providers use.
var statusAliases = map[sluice.BatchStatus]sluice.BatchStatus{
	"canceled":   sluice.BatchCancelled,
	"canceling":  sluice.BatchCancelling,
	"inprogress": sluice.BatchInProgress,
	"running":    sluice.BatchInProgress,
	"succeeded":  sluice.BatchCompleted,
	"success":    sluice.BatchCompleted,
	"error":      sluice.BatchFailed,
}

// apply copies what a part tracks of its batch.
func (r *Runner) apply(p *sluice.Part, b *sluice.Batch) {
	status := sluice.BatchStatus(strings.ToLower(string(b.Status)))
	if a, ok := statusAliases[status]; ok {
		status = a
	}
	p.BatchID, p.Status, p.Counts = b.ID, status, b.RequestCounts
	if b.OutputFileID != nil {
		p.OutputFileID = *b.OutputFileID
	}
	if b.ErrorFileID != nil {
		p.ErrorFileID = *b.ErrorFileID
	}
	if status == sluice.BatchFailed && b.Errors != nil && len(b.Errors.Data) > 0 {
		p.Error = describeErrors(b.Errors.Data)
	}
}

// describeErrors is a batch's errors in one line: the first few and how many more.
func describeErrors(errs []sluice.BatchError) string {
	const show = 3
	var parts []string
	for i, e := range errs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(errs)-show))
			break
		}
		parts = append(parts, e.String())
	}
	return strings.Join(parts, "; ")
}

// Step advances the job by one round trip to the provider: it starts parts a crash left
// unstarted, polls the batches still running, and collects the results of those that
// ended. When every part is collected and requests are still pending, it submits a new
// round if submit is set and rounds are left. A failure that the next step may get past
// (a poll that timed out) is a warning, not an error.
func (r *Runner) Step(ctx context.Context, job *sluice.Job, submit bool) (*Progress, error) {
	if submit && !job.IngestDone {
		return nil, fmt.Errorf("%w: job %s", ErrNotIngested, job.ID)
	}
	parts, err := r.store.Parts(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	var (
		warnings []string
		reach    reachability
	)
	for _, p := range parts {
		if p.Collected {
			continue
		}
		if !submit && p.BatchID == "" && p.Status == "" {
			continue // not started; Refresh never creates batches
		}
		err := r.advance(ctx, p, submit)
		reach.note(err)
		if err != nil {
			if fatal(err) {
				return nil, err
			}
			r.cfg.Logger.Warn("batch part", "job", job.ID, "part", p.Number, "err", err)
			warnings = append(warnings, fmt.Sprintf("part %d: %v", p.Number, err))
		}
	}
	prog, err := r.progress(ctx, job)
	if err != nil {
		return nil, err
	}
	prog.Warnings = warnings
	if prog.Active > 0 || prog.Done || !submit || prog.Leftover > 0 {
		prog.Unreachable = reach.err()
		return prog, nil
	}
	_, err = r.Submit(ctx, job)
	reach.note(err)
	if err != nil {
		if fatal(err) {
			return nil, err
		}
		warnings = append(warnings, err.Error())
	}
	if prog, err = r.progressWith(ctx, job, warnings); err != nil {
		return nil, err
	}
	prog.Unreachable = reach.err()
	return prog, nil
}

// reachability follows whether a step's calls reached the provider.
type reachability struct {
	reached bool  // a call got an answer (an error answer counts)
	last    error // the last call that got none
}

func (c *reachability) note(err error) {
	if unreachable(err) {
		c.last = err
	} else {
		c.reached = true
	}
}

// err is the last failure to reach the provider, when nothing reached it.
func (c *reachability) err() error {
	if c.reached {
		return nil
	}
	return c.last
}

// Refresh polls the job's running batches and collects the results of those that ended,
// without creating anything at the provider. It is safe beside a Step in another process.
func (r *Runner) Refresh(ctx context.Context, job *sluice.Job) (*Progress, error) {
	return r.Step(ctx, job, false)
}

// fatal reports whether err stops every part, not just one: a rejected key, or a ledger
// that cannot be written.
func fatal(err error) bool {
	var ue *sluice.UpstreamError
	if errors.Is(err, ErrNoBatchAPI) || errors.Is(err, ErrNotIngested) || errors.Is(err, errLedger) {
		return true
	}
	if errors.As(err, &ue) {
		return ue.StatusCode == 401 || ue.StatusCode == 403 || errors.Is(err, sluice.ErrAuth)
	}
	return false
}

// errLedger marks failures of the store.
var errLedger = errors.New("ledger")

// advance moves one uncollected part as far as it can go.
func (r *Runner) advance(ctx context.Context, p *sluice.Part, submit bool) error {
	if p.BatchID == "" && p.Status == "" {
		if err := r.start(ctx, p, true); err != nil {
			return err
		}
	}
	if p.BatchID != "" && !p.Status.Terminal() {
		b, err := r.api.Batch(ctx, p.BatchID)
		if err != nil {
			return err
		}
		r.apply(p, b)
		if err := r.store.UpdatePart(ctx, p); err != nil {
			return fmt.Errorf("%w: %w", errLedger, err)
		}
	}
	if p.Status.Terminal() {
		return r.collect(ctx, p)
	}
	return nil
}

func (r *Runner) progress(ctx context.Context, job *sluice.Job) (*Progress, error) {
	return r.progressWith(ctx, job, nil)
}

func (r *Runner) progressWith(ctx context.Context, job *sluice.Job, warnings []string) (*Progress, error) {
	parts, err := r.store.Parts(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	stats, err := r.jobStats(ctx, job.ID, parts)
	if err != nil {
		return nil, err
	}
	prog := &Progress{Parts: parts, Stats: stats, Warnings: warnings}
	for _, p := range parts {
		prog.Round = max(prog.Round, p.Round)
		if !p.Collected {
			prog.Active++
		}
	}
	prog.Done = stats.Pending+stats.InFlight == 0 && job.IngestDone
	if prog.Done && job.State != sluice.JobCompleted {
		job.State, job.Error = sluice.JobCompleted, ""
		if err := r.store.UpdateJob(ctx, job); err != nil {
			return nil, err
		}
	}
	if prog.Active == 0 && stats.Pending > 0 {
		spent, fresh, err := r.pendingRounds(ctx, job)
		if err != nil {
			return nil, err
		}
		if fresh == 0 {
			prog.Leftover = spent
		}
	}
	return prog, nil
}

// pendingRounds counts the job's pending requests whose rounds are spent, and the others.
func (r *Runner) pendingRounds(ctx context.Context, job *sluice.Job) (spent, fresh int64, err error) {
	err = r.store.Pending(ctx, job.ID, 0, 0, func(it *sluice.Item) error {
		if it.Attempts >= r.cfg.MaxRounds {
			spent++
		} else {
			fresh++
		}
		return nil
	})
	return spent, fresh, err
}

// Cancel asks the provider to cancel every running batch of the job, and gives back the
// requests of parts not created yet. Batches end cancelled after their requests in
// flight finish: Step or Refresh then collects what finished.
func (r *Runner) Cancel(ctx context.Context, job *sluice.Job) error {
	parts, err := r.store.Parts(ctx, job.ID)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range parts {
		switch {
		case p.Collected || p.Status.Terminal():
		case p.BatchID == "":
			p.Status, p.Error = sluice.BatchCancelled, "cancelled before its batch was created"
			if err := r.store.UpdatePart(ctx, p); err != nil {
				return err
			}
			if err := r.collect(ctx, p); err != nil {
				return err
			}
		case p.Status != sluice.BatchCancelling:
			b, err := r.api.CancelBatch(ctx, p.BatchID)
			if err != nil { // it may have ended meanwhile
				if got, gerr := r.api.Batch(ctx, p.BatchID); gerr == nil && got.Status.Terminal() {
					b, err = got, nil
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("part %d: %w", p.Number, err))
				continue
			}
			r.apply(p, b)
			if err := r.store.UpdatePart(ctx, p); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}
