package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/report"
	"github.com/sluice-llm/sluice/sqlite"
)

// TestRunRecordsATimelineAndReportsHTML: sluice run records the job's timeline, with
// samples of the run, and sluice report --html writes a page with everything inline.
func TestRunRecordsATimelineAndReportsHTML(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 100)
	store := filepath.Join(dir, "s.db")
	res := runCLI(t, nil, "run", input, "-o", filepath.Join(dir, "out.jsonl"), "--sim", "--store", store, "--json", "--progress", "none")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
	}
	var rep report.Job
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.JobCounts(t.Context(), rep.Job)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasTimeline || c.Totals.Completed != 100 || c.Totals.Sample == nil || c.Totals.Sample.Done != 100 {
		t.Errorf("the run's timeline totals: %+v (sample %+v), want 100 completed and a last sample of 100 done", c.Totals, c.Totals.Sample)
	}

	page := filepath.Join(dir, "report.html")
	res = runCLI(t, nil, "report", rep.Job, "--store", store, "--html", page)
	if res.code != exitOK {
		t.Fatalf("report --html: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if html := string(b); !strings.Contains(html, rep.Job) || !strings.Contains(html, `id="chart-data"`) || strings.Contains(html, `src="/`) {
		t.Errorf("report.html is not a self-contained page of the job (%d bytes)", len(b))
	}
	if res := runCLI(t, nil, "report", rep.Job, "--store", store); res.code != exitOK || !strings.Contains(res.stdout, "100 done") {
		t.Errorf("report without --html: exit %d, stdout:\n%s", res.code, res.stdout)
	}
	if res := runCLI(t, nil, "report", "job_nope", "--store", store, "--html", page); res.code != exitUsage {
		t.Errorf("report of an unknown job: exit %d, want %d", res.code, exitUsage)
	}
}

// TestServeDashboardShowsEachKeyItsOwnBatches: sluice serve's dashboard refuses a request
// without a key, shows a client key its own batches only and the admin key all, and the
// batches' runs record their timelines.
func TestServeDashboardShowsEachKeyItsOwnBatches(t *testing.T) {
	dir := t.TempDir()
	log := &serveLog{changed: make(chan struct{}, 1)}
	interrupts := make(chan os.Signal, 1)
	e := &env{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: log,
		getenv: func(k string) string {
			return map[string]string{clientKeysEnv: "sk-one, sk-two", adminKeyEnv: "adm-key"}[k]
		},
		interrupts: interrupts,
	}
	exited := make(chan int, 1)
	go func() {
		exited <- execute(context.Background(), e, []string{"serve", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "sluice.db")})
	}()
	defer func() {
		interrupts <- os.Interrupt
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop on an interrupt")
		}
	}()
	base := log.waitListening(t, exited)

	batch := func(key string) string {
		t.Helper()
		c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
		in, err := c.Files.New(t.Context(), openai.FileNewParams{
			File: openai.File(strings.NewReader(
				`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}}`+"\n"),
				"in.jsonl", "application/jsonl"),
			Purpose: openai.FilePurposeBatch,
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Batches.New(t.Context(), openai.BatchNewParams{InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
		if err != nil {
			t.Fatal(err)
		}
		return waitBatch(t, &c, b.ID).ID
	}
	one, two := batch("sk-one"), batch("sk-two")

	get := func(path, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/", ""); code != http.StatusUnauthorized || strings.Contains(body, one) {
		t.Errorf("no key: %d", code)
	}
	if code, body := get("/", "sk-one"); code != http.StatusOK || !strings.Contains(body, one) || strings.Contains(body, two) {
		t.Errorf("sk-one's dashboard (%d) should list %s and not %s:\n%s", code, one, two, body)
	}
	if code, _ := get("/ui/api/jobs/"+two+"/timeline", "sk-one"); code != http.StatusNotFound {
		t.Errorf("sk-one reading sk-two's timeline: %d, want 404", code)
	}
	if _, body := get("/", "adm-key"); !strings.Contains(body, one) || !strings.Contains(body, two) {
		t.Errorf("the admin's dashboard should list both batches:\n%s", body)
	}
	if code, _ := get("/v1/batches/"+one, "adm-key"); code != http.StatusUnauthorized {
		t.Errorf("the admin key on the API: %d, want 401 (it is the dashboard's only)", code)
	}
	// The batch's run wrote its timeline, with its last sample, as it ended.
	// The recorder writes on its own tick: poll for it.
	testutil.Poll(t, 10*time.Second, 50*time.Millisecond, func() (string, error) {
		_, body := get("/ui/api/jobs/"+one+"/timeline", "sk-one")
		return body, nil
	}, func(body string) bool {
		var d struct {
			HasSamples bool `json:"has_samples"`
			Ledger     bool `json:"ledger"`
		}
		return json.Unmarshal([]byte(body), &d) == nil && d.HasSamples && !d.Ledger
	})
}
