package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/simjob"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
	"github.com/sluice-llm/sluice/timeline"
	"github.com/sluice-llm/sluice/ui"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// runJob runs a job of n requests (every 10th answered 400) to its end, with or without
// a Recorder.
func runJob(t *testing.T, st *sqlite.Store, id string, n int, record bool) {
	t.Helper()
	cfg := sluice.Config{Concurrency: 8, Cost: func(string, sluice.Usage) float64 { return 0.01 }}
	var rec *timeline.Recorder
	if record {
		rec = timeline.New(st, timeline.Config{Interval: 100 * time.Millisecond, SampleEvery: 20 * time.Millisecond})
		rec.Start()
		cfg.Observer = rec
	}
	job, err := simjob.Start(t.Context(), st, simjob.Options{JobID: id, Requests: n, BadEvery: 10,
		Sim: sim.Config{Seed: 1, TTFT: 2 * time.Millisecond}, Engine: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if err := job.Run.Wait(); err != nil {
		t.Fatal(err)
	}
	if rec != nil {
		if err := rec.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func get(t testing.TB, h http.Handler, path string, mod ...func(*http.Request)) (int, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for _, m := range mod {
		m(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func newHandler(t *testing.T, cfg ui.Config) *ui.Handler {
	t.Helper()
	h, err := ui.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestDashboardShowsAJob(t *testing.T) {
	st := openStore(t)
	runJob(t, st, "job-1", 40, true)
	h := newHandler(t, ui.Config{Store: st})

	code, body := get(t, h, "/")
	if code != http.StatusOK || !strings.Contains(body, `href="/ui/jobs/job-1"`) || !strings.Contains(body, "completed") {
		t.Fatalf("GET / = %d:\n%s", code, body)
	}
	// A job its run completed is counted from its last sample, without a scan.
	if _, body := get(t, h, "/ui/jobs/job-1"); !strings.Contains(body, "counts from the timeline") || !strings.Contains(body, `<b id="done">36</b>`) {
		t.Errorf("a completed job's page should count from its timeline:\n%s", body)
	}
	code, body = get(t, h, "/ui/jobs/job-1")
	if code != http.StatusOK || !strings.Contains(body, `data-src="/ui/api/jobs/job-1/timeline"`) {
		t.Fatalf("job page = %d:\n%s", code, body)
	}
	// The four failed lines, each linking to its input line.
	for _, line := range []string{"10", "20", "30", "40"} {
		if !strings.Contains(body, `href="/ui/jobs/job-1/lines/`+line+`"`) {
			t.Errorf("job page does not link failed line %s", line)
		}
	}
	code, body = get(t, h, "/ui/api/jobs/job-1/timeline")
	if code != http.StatusOK {
		t.Fatalf("timeline = %d: %s", code, body)
	}
	var d struct {
		T          []float64             `json:"t"`
		Done       []*float64            `json:"done"`
		P50        []*float64            `json:"p50"`
		Errors     map[string][]*float64 `json:"errors"`
		HasSamples bool                  `json:"has_samples"`
		Live       bool                  `json:"live"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.T) == 0 || len(d.Done) != len(d.T) || d.Errors["400"] == nil || !d.HasSamples || d.Live {
		t.Errorf("timeline = %s", body)
	}
	// The summary of an ended job tells htmx to stop polling.
	if code, body := get(t, h, "/ui/part/jobs/job-1/summary"); code != 286 || !strings.Contains(body, "36") {
		t.Errorf("summary = %d:\n%s", code, body)
	}
	if code, body := get(t, h, "/ui/part/jobs/job-1/failures?code=400"); code != 286 || strings.Count(body, `class="frow"`) != 4 {
		t.Errorf("failures with code 400 = %d:\n%s", code, body)
	}
	if code, body := get(t, h, "/ui/part/jobs/job-1/failures?code=503"); code != 286 || strings.Contains(body, `class="frow"`) {
		t.Errorf("failures with code 503 = %d:\n%s", code, body)
	}
	code, body = get(t, h, "/ui/jobs/job-1/lines/10")
	if code != http.StatusOK || !strings.Contains(body, "req-10") || !strings.Contains(body, "robot") {
		t.Errorf("line 10 = %d:\n%s", code, body)
	}
	if code, _ := get(t, h, "/ui/jobs/nope"); code != http.StatusNotFound {
		t.Errorf("unknown job: %d, want 404", code)
	}
	if code, _ := get(t, h, "/ui/assets/"+"dash.js"); code != http.StatusOK {
		t.Errorf("dash.js: %d", code)
	}
}

func TestJobWithoutTimelineShownFromItsLedger(t *testing.T) {
	st := openStore(t)
	runJob(t, st, "old", 30, false)
	h := newHandler(t, ui.Config{Store: st})
	code, body := get(t, h, "/ui/api/jobs/old/timeline")
	var d struct {
		Done   []*float64 `json:"done"`
		Ledger bool       `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(body), &d); code != http.StatusOK || err != nil || !d.Ledger || len(d.Done) == 0 {
		t.Fatalf("timeline of a job without one = %d %v: %s", code, err, body)
	}
	if _, body := get(t, h, "/ui/jobs/old"); !strings.Contains(body, "counts from the ledger") {
		t.Errorf("job page of a job without a timeline:\n%s", body)
	}
	// A recorder that writes the job's timeline after the job ended (as a run's last
	// buckets are) replaces the one built from the ledger.
	if err := st.AppendTimeline(t.Context(), "old", []sluice.TimelineBucket{{Start: time.Now(), Width: time.Second, Completed: 7}}); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, h, "/ui/api/jobs/old/timeline")
	if err := json.Unmarshal([]byte(body), &d); err != nil || d.Ledger || len(d.Done) != 1 || *d.Done[0] != 7 {
		t.Errorf("timeline once one was written = %s", body)
	}
}

// authConfig: keys "key-a" and "key-b" own job-a and job-b; "admin" sees both.
func authConfig(st sluice.Store) ui.Config {
	owners := map[string]string{"key-a": "owner-a", "key-b": "owner-b", "admin": ""}
	return ui.Config{Store: st,
		Authenticate: func(r *http.Request) (string, bool) {
			_, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			owner, ok := owners[key]
			return owner, ok
		},
		JobsOf: func(ctx context.Context, owner string) ([]*sluice.Job, error) {
			job, err := st.Job(ctx, map[string]string{"owner-a": "job-a", "owner-b": "job-b"}[owner])
			if err != nil {
				return nil, err
			}
			return []*sluice.Job{job}, nil
		},
	}
}

func bearer(key string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }
}

func cookie(key string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: ui.KeyCookie, Value: key}) }
}

func TestAKeySeesOnlyItsOwnJobs(t *testing.T) {
	st := openStore(t)
	runJob(t, st, "job-a", 5, true)
	runJob(t, st, "job-b", 5, true)
	withOwns := authConfig(st)
	withOwns.Owns = func(_ context.Context, owner, id string) (bool, error) {
		return map[string]string{"owner-a": "job-a", "owner-b": "job-b"}[owner] == id, nil
	}
	for name, cfg := range map[string]ui.Config{"JobsOf": authConfig(st), "Owns": withOwns} {
		t.Run(name, func(t *testing.T) { testKeySees(t, newHandler(t, cfg)) })
	}
}

func testKeySees(t *testing.T, h *ui.Handler) {
	if code, body := get(t, h, "/"); code != http.StatusUnauthorized || !strings.Contains(body, `action="/ui/login"`) || strings.Contains(body, "job-a") {
		t.Errorf("no key: %d, want the login page:\n%s", code, body)
	}
	if code, _ := get(t, h, "/ui/api/jobs/job-a/timeline"); code != http.StatusUnauthorized {
		t.Errorf("no key, timeline: %d, want 401", code)
	}
	if code, _ := get(t, h, "/", bearer("wrong")); code != http.StatusUnauthorized {
		t.Errorf("a wrong key: %d, want 401", code)
	}
	for _, auth := range []func(*http.Request){bearer("key-a"), cookie("key-a")} {
		_, body := get(t, h, "/", auth)
		if !strings.Contains(body, "job-a") || strings.Contains(body, "job-b") {
			t.Errorf("key-a's list:\n%s", body)
		}
		for _, path := range []string{"/ui/jobs/job-b", "/ui/api/jobs/job-b/timeline", "/ui/part/jobs/job-b/summary",
			"/ui/part/jobs/job-b/failures", "/ui/jobs/job-b/lines/1"} {
			if code, _ := get(t, h, path, auth); code != http.StatusNotFound {
				t.Errorf("key-a GET %s: %d, want 404", path, code)
			}
		}
		if code, _ := get(t, h, "/ui/api/jobs/job-a/timeline", auth); code != http.StatusOK {
			t.Errorf("key-a's own timeline: %d", code)
		}
	}
	if _, body := get(t, h, "/", bearer("admin")); !strings.Contains(body, "job-a") || !strings.Contains(body, "job-b") {
		t.Errorf("the admin's list:\n%s", body)
	}

	// The login form keeps a good key in the cookie, and refuses a bad one.
	post := func(key string) (int, []*http.Cookie) {
		r := httptest.NewRequest(http.MethodPost, "/ui/login", strings.NewReader(url.Values{"key": {key}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, (&http.Response{Header: w.Header()}).Cookies()
	}
	code, cookies := post("key-b")
	if code != http.StatusSeeOther || len(cookies) != 1 || cookies[0].Value != "key-b" ||
		!cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Errorf("login with key-b: %d, cookies %v", code, cookies)
	}
	if code, cookies := post("nope"); code != http.StatusUnauthorized || len(cookies) != 0 {
		t.Errorf("login with a bad key: %d, cookies %v", code, cookies)
	}
}

func TestReportIsSelfContained(t *testing.T) {
	st := openStore(t)
	runJob(t, st, "job-1", 40, true)
	runJob(t, st, "old", 20, false)
	for _, id := range []string{"job-1", "old"} {
		var b bytes.Buffer
		if err := ui.WriteReport(t.Context(), &b, id, ui.ReportConfig{Store: st}); err != nil {
			t.Fatal(err)
		}
		html := b.String()
		for _, bad := range []string{`src="/`, `href="/ui`, "hx-get", "<link "} {
			if strings.Contains(html, bad) {
				t.Errorf("%s: the report refers to the server (%q)", id, bad)
			}
		}
		for _, want := range []string{"uPlot", `id="chart-data"`, id, `class="frow"`} {
			if !strings.Contains(html, want) {
				t.Errorf("%s: the report lacks %q", id, want)
			}
		}
		start := strings.Index(html, `<script type="application/json" id="chart-data">`)
		end := strings.Index(html[start:], "</script>")
		var d struct {
			Done []*float64 `json:"done"`
		}
		if err := json.Unmarshal([]byte(html[start+len(`<script type="application/json" id="chart-data">`):start+end]), &d); err != nil || len(d.Done) == 0 {
			t.Errorf("%s: chart data %v, %d points", id, err, len(d.Done))
		}
	}
	if err := ui.WriteReport(t.Context(), io.Discard, "nope", ui.ReportConfig{Store: st}); err == nil {
		t.Error("a report of an unknown job: no error")
	}
}
