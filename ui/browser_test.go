package ui_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/simjob"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/timeline"
	"github.com/sluice-llm/sluice/ui"
)

// screenshotDirEnv names a directory to keep the browser test's screenshots in (default:
// the test's temporary directory, logged).
const screenshotDirEnv = "SLUICE_SCREENSHOT_DIR"

// chromium finds a Chromium to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium installed (apt-get install -y chromium)")
	return ""
}

// browser starts a headless Chromium for the test.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1500),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

func screenshotPath(t *testing.T, name string) string {
	dir := os.Getenv(screenshotDirEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// TestBrowserFollowsARunningJob loads a job's page in headless Chromium while the job
// runs against the simulator, and checks that its progress moves and its charts draw.
func TestBrowserFollowsARunningJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bctx := browser(t, ctx)

	st := openStore(t)
	rec := timeline.New(st, timeline.Config{Interval: 250 * time.Millisecond, SampleEvery: 50 * time.Millisecond})
	rec.Start()
	defer func() {
		if err := rec.Close(context.WithoutCancel(ctx)); err != nil {
			t.Error(err)
		}
	}()
	// About 40 requests a second for 10 seconds, with a hidden limit that answers some 429s.
	job, err := simjob.Start(ctx, st, simjob.Options{JobID: "job_browser", Requests: 400, BadEvery: 25,
		Sim:    sim.Config{Seed: 1, TTFT: 40 * time.Millisecond, PerToken: 2 * time.Millisecond, Jitter: 0.3, RPM: 3000},
		Engine: sluice.Config{Concurrency: 4, Observer: rec, Cost: func(_ string, u sluice.Usage) float64 { return float64(u.Total()) * 2e-6 }}})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	defer func() {
		if err := job.Run.StopAndCancel(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, sluice.ErrInterrupted) {
			t.Logf("stop: %v", err)
		}
	}()
	rec.Watch(job.Run)

	h := newHandler(t, ui.Config{Store: st, Refresh: 300 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()

	// The progress as the page shows it, and how many chart canvases have pixels drawn.
	const finishedJS = `document.querySelector("#finished") ? document.querySelector("#finished").textContent : ""`
	const drawnJS = `Array.from(document.querySelectorAll("#charts .plot canvas")).filter(c => {
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
		return false;
	}).length`
	poll := func(expr string) chromedp.Action[bool] {
		return chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))
	}
	if err := chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/ui/jobs/job_browser"),
		chromedp.WaitVisible(chromedp.CSS("#charts .plot canvas")),
	); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	first, err := chromedp.Run(bctx, chromedp.Evaluate[string](finishedJS))
	if err != nil {
		t.Fatal(err)
	}
	// The summary is polled by htmx: wait for the count of finished requests to change.
	if _, err := chromedp.Run(bctx, poll(`(`+finishedJS+`) !== `+quoteJS(first))); err != nil {
		t.Fatalf("the progress did not move from %q: %v", first, err)
	}
	later, err := chromedp.Run(bctx, chromedp.Evaluate[string](finishedJS))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress moved: %q → %q", first, later)
	// Wait for the charts to have been redrawn from a timeline with a few buckets.
	if _, err := chromedp.Run(bctx, poll(`(window.sluiceDraws || 0) >= 4`)); err != nil {
		t.Fatalf("charts: %v", err)
	}
	drawn, err := chromedp.Run(bctx, chromedp.Evaluate[int](drawnJS))
	if err != nil {
		t.Fatal(err)
	}
	if drawn < 4 {
		t.Errorf("%d of the 6 charts have pixels drawn, want at least 4", drawn)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := screenshotPath(t, "dashboard-job.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the running job: %s", path)

	// The job list shows it too, with its progress bar.
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/jobs/job_browser"]`))); err != nil {
		t.Fatalf("job list: %v", err)
	}
	bars, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#jobs .bar .fill").length`))
	if err != nil {
		t.Fatal(err)
	}
	if bars != 1 {
		t.Errorf("job list has %d progress bars, want 1", bars)
	}
	if png, err = chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(screenshotPath(t, "dashboard-jobs.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// quoteJS quotes s as a JavaScript string.
func quoteJS(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r > 0x7e:
			b = append(b, []byte(`\u`+hex4(r))...)
		default:
			b = append(b, byte(r))
		}
	}
	return string(append(b, '"'))
}

func hex4(r rune) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[r>>12&15], digits[r>>8&15], digits[r>>4&15], digits[r&15]})
}
