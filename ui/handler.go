package ui

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/timeline"
)

// Defaults of Config.
const (
	// DefaultRefresh is how often the page polls a running job.
	DefaultRefresh = 2 * time.Second
	// DefaultMaxPoints bounds the points of a chart.
	DefaultMaxPoints = 300
	// DefaultMaxJobs is how many jobs the list shows, newest first.
	DefaultMaxJobs = 50
	// failuresPage is how many failed requests a page of the table shows.
	failuresPage = 50
)

// stopPolling is the status that tells htmx to stop polling (the job has ended).
const stopPolling = 286

// KeyCookie is the cookie the page keeps the viewer's key in after it was typed in the
// login form (HttpOnly, SameSite=Strict); it is never logged or stored by sluice.
const KeyCookie = "sluice_key"

// Config configures a Handler.
type Config struct {
	// Store holds the jobs. When it is a sluice.TimelineStore, running jobs are followed
	// through their timelines; otherwise from their ledgers, every statsTTL.
	Store sluice.Store
	// Authenticate, when set, names the viewer of a request from its bearer key (the
	// Authorization header, or the key typed in the login form): ok false refuses it;
	// an empty owner sees every job (an admin key), another sees JobsOf(owner). Nil lets
	// everyone see every job (sluice ui on a local store).
	Authenticate func(r *http.Request) (owner string, ok bool)
	// JobsOf lists the jobs owner may see, newest first; required with Authenticate.
	JobsOf func(ctx context.Context, owner string) ([]*sluice.Job, error)
	// Owns, when set, reports whether owner may see the job with id, for the pages of
	// one job; without it they look the job up in JobsOf.
	Owns func(ctx context.Context, owner, jobID string) (bool, error)
	// Cost prices usage, for jobs shown from their ledgers; nil shows no cost for them.
	Cost func(model string, u sluice.Usage) float64
	// Title names the page ("sluice").
	Title string
	// Refresh is how often the page polls (DefaultRefresh); MaxPoints bounds a chart's
	// points (DefaultMaxPoints); MaxJobs the jobs listed (DefaultMaxJobs).
	Refresh   time.Duration
	MaxPoints int
	MaxJobs   int
	// Interval is the bucket width of timelines built from a ledger
	// (timeline.DefaultInterval).
	Interval time.Duration
	// Logger receives the errors of requests; nil discards them.
	Logger *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Title == "" {
		c.Title = "sluice"
	}
	if c.Refresh <= 0 {
		c.Refresh = DefaultRefresh
	}
	if c.MaxPoints <= 0 {
		c.MaxPoints = DefaultMaxPoints
	}
	if c.MaxJobs <= 0 {
		c.MaxJobs = DefaultMaxJobs
	}
	if c.Interval <= 0 {
		c.Interval = timeline.DefaultInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Handler serves the dashboard. Mount it at "/" (it serves "/" and "/ui/…"). It is safe
// for concurrent use.
type Handler struct {
	cfg  Config
	ts   sluice.TimelineStore // nil when the store keeps no timelines
	mux  *http.ServeMux
	tmpl *template.Template

	mu         sync.Mutex
	series     map[string]*timelineCache
	statsCache map[string]*statsEntry
}

// New returns a Handler over cfg.Store.
func New(cfg Config) (*Handler, error) {
	cfg = cfg.WithDefaults()
	if cfg.Store == nil {
		return nil, errors.New("ui: Config.Store is required")
	}
	if cfg.Authenticate != nil && cfg.JobsOf == nil {
		return nil, errors.New("ui: Config.JobsOf is required with Authenticate")
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), tmpl: tmpl,
		series: map[string]*timelineCache{}, statsCache: map[string]*statsEntry{}}
	h.ts, _ = cfg.Store.(sluice.TimelineStore)
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	h.mux.HandleFunc("GET /{$}", h.viewerOnly(h.servePage))
	h.mux.HandleFunc("GET /ui/jobs/{id}", h.viewerOnly(h.servePage))
	h.mux.HandleFunc("GET /ui/jobs/{id}/lines/{line}", h.viewerOnly(h.serveLine))
	h.mux.HandleFunc("GET /ui/part/jobs", h.viewerOnly(h.serveJobsPart))
	h.mux.HandleFunc("GET /ui/part/jobs/{id}/summary", h.viewerOnly(h.serveSummaryPart))
	h.mux.HandleFunc("GET /ui/part/jobs/{id}/failures", h.viewerOnly(h.serveFailuresPart))
	h.mux.HandleFunc("GET /ui/api/jobs/{id}/timeline", h.viewerOnly(h.serveTimeline))
	h.mux.HandleFunc("GET /ui/assets/{name}", h.serveAsset)
	h.mux.HandleFunc("GET /ui/login", h.serveLogin)
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.mux.HandleFunc("POST /ui/logout", h.logout)
}

// ServeHTTP serves the dashboard.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

// viewer is who asks: an owner's key, or everyone.
type viewer struct {
	all   bool
	owner string
}

type viewerFunc func(w http.ResponseWriter, r *http.Request, v viewer) error

// viewerOnly runs fn for an authenticated viewer; others get the login page (a page) or
// 401 (a part or the API).
func (h *Handler) viewerOnly(fn viewerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := h.viewer(r)
		if !ok {
			if strings.HasPrefix(r.URL.Path, "/ui/part/") || strings.HasPrefix(r.URL.Path, "/ui/api/") {
				http.Error(w, "a client key or the admin key is required", http.StatusUnauthorized)
				return
			}
			h.render(w, http.StatusUnauthorized, "login", loginPage{Title: h.cfg.Title})
			return
		}
		if err := fn(w, r, v); err != nil {
			h.fail(w, r, err)
		}
	}
}

// viewer authenticates the request's key from its Authorization header or KeyCookie.
func (h *Handler) viewer(r *http.Request) (viewer, bool) {
	if h.cfg.Authenticate == nil {
		return viewer{all: true}, true
	}
	if r.Header.Get("Authorization") == "" {
		c, err := r.Cookie(KeyCookie)
		if err != nil || c.Value == "" {
			return viewer{}, false
		}
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+c.Value)
	}
	owner, ok := h.cfg.Authenticate(r)
	if !ok {
		return viewer{}, false
	}
	return viewer{all: owner == "", owner: owner}, true
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, sluice.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Context().Err() == nil {
		h.cfg.Logger.Error("dashboard", "path", r.URL.Path, "err", err)
	}
	http.Error(w, "the dashboard could not read the store", http.StatusInternalServerError)
}

// jobs lists the jobs v may see, newest first, at most MaxJobs.
func (h *Handler) jobs(ctx context.Context, v viewer) ([]*sluice.Job, error) {
	var (
		jobs []*sluice.Job
		err  error
	)
	if v.all {
		jobs, err = h.cfg.Store.Jobs(ctx, "")
	} else {
		jobs, err = h.cfg.JobsOf(ctx, v.owner)
	}
	if err != nil {
		return nil, err
	}
	return jobs[:min(len(jobs), h.cfg.MaxJobs)], nil
}

// job returns the job of the request's {id} when v may see it, or ErrNotFound.
func (h *Handler) job(r *http.Request, v viewer) (*sluice.Job, error) {
	id := r.PathValue("id")
	if v.all {
		return h.cfg.Store.Job(r.Context(), id)
	}
	if h.cfg.Owns != nil {
		ok, err := h.cfg.Owns(r.Context(), v.owner, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, sluice.ErrNotFound
		}
		return h.cfg.Store.Job(r.Context(), id)
	}
	jobs, err := h.cfg.JobsOf(r.Context(), v.owner)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if j.ID == id {
			return j, nil
		}
	}
	return nil, sluice.ErrNotFound
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request, v viewer) error {
	p := page{Title: h.cfg.Title, Refresh: h.cfg.Refresh.Milliseconds(), Assets: linkedAssets(), LoggedIn: h.cfg.Authenticate != nil}
	if r.PathValue("id") == "" {
		jl, err := h.jobList(r.Context(), v)
		if err != nil {
			return err
		}
		p.Jobs = jl
	} else {
		job, err := h.job(r, v)
		if err != nil {
			return err
		}
		if p.Job, err = h.view(r.Context(), job, true); err != nil {
			return err
		}
		if p.Failures, err = h.failures(r.Context(), job, 0, r.URL.Query().Get("code")); err != nil {
			return err
		}
		p.Failures.Codes = p.Job.Errors
	}
	h.render(w, http.StatusOK, "page", p)
	return nil
}

func (h *Handler) jobList(ctx context.Context, v viewer) ([]*jobView, error) {
	jobs, err := h.jobs(ctx, v)
	if err != nil {
		return nil, err
	}
	views := make([]*jobView, 0, len(jobs))
	for _, j := range jobs {
		jv, err := h.view(ctx, j, true)
		if errors.Is(err, sluice.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		views = append(views, jv)
	}
	return views, nil
}

func (h *Handler) serveJobsPart(w http.ResponseWriter, r *http.Request, v viewer) error {
	jl, err := h.jobList(r.Context(), v)
	if err != nil {
		return err
	}
	h.render(w, http.StatusOK, "jobs", jl)
	return nil
}

func (h *Handler) serveSummaryPart(w http.ResponseWriter, r *http.Request, v viewer) error {
	job, err := h.job(r, v)
	if err != nil {
		return err
	}
	jv, err := h.view(r.Context(), job, true)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if !jv.Live {
		status = stopPolling
	}
	h.render(w, status, "summary", jv)
	return nil
}

// failureList is a page of a job's failed requests.
type failureList struct {
	JobID string
	Code  string
	Codes []codeCount
	Rows  []*sluice.Result
	Next  int64 // the after of the next page; 0 when there is none
	// Unavailable is set when the store cannot list failures without a scan.
	Unavailable bool
	// Static is set in a report: lines are not links.
	Static bool
}

func (h *Handler) failures(ctx context.Context, job *sluice.Job, after int64, code string) (*failureList, error) {
	fl := &failureList{JobID: job.ID, Code: code}
	if h.ts == nil {
		fl.Unavailable = true
		return fl, nil
	}
	rows, err := h.ts.Failures(ctx, job.ID, after, code, failuresPage+1)
	if err != nil {
		return nil, err
	}
	if len(rows) > failuresPage {
		rows = rows[:failuresPage]
		fl.Next = rows[len(rows)-1].Line
	}
	fl.Rows = rows
	return fl, nil
}

func (h *Handler) serveFailuresPart(w http.ResponseWriter, r *http.Request, v viewer) error {
	job, err := h.job(r, v)
	if err != nil {
		return err
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	fl, err := h.failures(r.Context(), job, after, r.URL.Query().Get("code"))
	if err != nil {
		return err
	}
	name := "failure-rows"
	if after == 0 {
		name = "failure-table"
	}
	status := http.StatusOK
	if job.State != sluice.JobRunning {
		status = stopPolling
	}
	h.render(w, status, name, fl)
	return nil
}

func (h *Handler) serveTimeline(w http.ResponseWriter, r *http.Request, v viewer) error {
	job, err := h.job(r, v)
	if err != nil {
		return err
	}
	bs, err := h.timeline(r.Context(), job)
	if err != nil {
		return err
	}
	d := chart(downsample(bs, h.cfg.MaxPoints))
	d.Ledger, d.Live = h.isLedger(job.ID), job.State == sluice.JobRunning
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(d)
}

func (h *Handler) isLedger(jobID string) bool {
	h.mu.Lock()
	c := h.series[jobID]
	h.mu.Unlock()
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ledger
}

// linePage shows one input line of a job and its answer.
type linePage struct {
	Title, JobID string
	Line         int64
	Request      string
	Result       *sluice.Result
	Assets       assets
}

func (h *Handler) serveLine(w http.ResponseWriter, r *http.Request, v viewer) error {
	job, err := h.job(r, v)
	if err != nil {
		return err
	}
	line, err := strconv.ParseInt(r.PathValue("line"), 10, 64)
	if err != nil || line < 1 {
		return sluice.ErrNotFound
	}
	if h.ts == nil {
		return sluice.ErrNotFound
	}
	req, err := h.ts.Input(r.Context(), job.ID, line)
	if err != nil {
		return err
	}
	body, err := json.MarshalIndent(req, "", "  ")
	if err != nil {
		return err
	}
	lp := linePage{Title: h.cfg.Title, JobID: job.ID, Line: line, Request: string(body), Assets: linkedAssets()}
	err = h.cfg.Store.Results(r.Context(), job.ID, line-1, 1, func(res *sluice.Result) error {
		if res.Line == line {
			lp.Result = res
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.render(w, http.StatusOK, "line", lp)
	return nil
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var ctype string
	switch {
	case strings.HasSuffix(name, ".js"):
		ctype = "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".css"):
		ctype = "text/css; charset=utf-8"
	default:
		http.NotFound(w, r)
		return
	}
	b, err := files.ReadFile("assets/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}

// loginPage asks for a key.
type loginPage struct {
	Title string
	Error string
}

func (h *Handler) serveLogin(w http.ResponseWriter, _ *http.Request) {
	h.render(w, http.StatusOK, "login", loginPage{Title: h.cfg.Title})
}

// login checks the key typed in the form and keeps it in KeyCookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Authenticate == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	key := strings.TrimSpace(r.PostFormValue("key"))
	probe := r.Clone(r.Context())
	probe.Header.Set("Authorization", "Bearer "+key)
	if _, ok := h.cfg.Authenticate(probe); key == "" || !ok {
		h.render(w, http.StatusUnauthorized, "login", loginPage{Title: h.cfg.Title, Error: "That key is not a client key or the admin key."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: KeyCookie, Value: key, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: KeyCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := h.tmpl.ExecuteTemplate(w, name, data); err != nil {
		h.cfg.Logger.Error("dashboard: render", "template", name, "err", err)
	}
}

// fromLedger builds a job's timeline from its ledger.
func (h *Handler) fromLedger(ctx context.Context, jobID string) ([]sluice.TimelineBucket, error) {
	return timeline.FromLedger(ctx, h.ts, jobID, h.cfg.Interval, h.cfg.Cost)
}
