package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/sluice-llm/sluice"
)

func isTerminal(w io.Writer) bool { return isTerminalFile(w) }

// isTerminalFile reports whether v is an *os.File open on a terminal.
func isTerminalFile(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startProgress shows a run's progress until the returned function is called: bars on a
// terminal, a plain line every --log-interval otherwise (to stderr, so stdout keeps only
// the report).
func startProgress(e *env, f *runFlags, run *sluice.Run) (stop func()) {
	mode := f.progress
	if mode == "auto" {
		mode = "log"
		if e.isTerminal && !f.jsonOut {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		return progressBars(e, run)
	case "log":
		return progressLog(e.stderr, run, f.logEvery)
	default:
		return func() {}
	}
}

// progressLine is one line of the plain progress log.
func progressLine(p sluice.Progress, rate *rateTracker) string {
	var b strings.Builder
	final := p.Done + p.Failed
	total := fmt.Sprint(p.Total)
	if !p.IngestDone {
		total += "+"
	}
	reqRate, tokRate := rate.update(final, p.Usage.Total())
	fmt.Fprintf(&b, "%d/%s done (%d failed), %d in flight, %.1f req/s, %.0f tok/s, $%.4f, %d retries, %d×429",
		final, total, p.Failed, p.InFlight, reqRate, tokRate, p.Cost, p.Retries, p.Throttled)
	if p.IngestDone && reqRate > 0 && p.Total > final {
		eta := time.Duration(float64(p.Total-final) / reqRate * float64(time.Second))
		fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
	}
	switch {
	case !p.FailingSince.IsZero():
		fmt.Fprintf(&b, ", upstream failing for %s", time.Since(p.FailingSince).Round(time.Second))
		if p.BreakerOpen {
			b.WriteString(" (circuit open)")
		}
		if p.LastError != "" {
			b.WriteString(": " + shorten(p.LastError, 160))
		}
	case p.BreakerOpen:
		b.WriteString(", upstream failing: circuit open")
	}
	if wait := time.Until(p.Limits.PausedUntil); wait > 0 {
		fmt.Fprintf(&b, ", paused %s after 429", wait.Round(100*time.Millisecond))
	}
	return b.String()
}

// shorten cuts s to at most n bytes, on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// rateTracker turns counters into rates between two looks.
type rateTracker struct {
	last             time.Time
	requests, tokens int64
	reqRate, tokRate float64
}

func (t *rateTracker) update(requests, tokens int64) (float64, float64) {
	now := time.Now()
	if !t.last.IsZero() {
		if dt := now.Sub(t.last).Seconds(); dt >= 0.5 {
			t.reqRate = float64(requests-t.requests) / dt
			t.tokRate = float64(tokens-t.tokens) / dt
			t.last, t.requests, t.tokens = now, requests, tokens
		}
	} else {
		t.last, t.requests, t.tokens = now, requests, tokens
	}
	return t.reqRate, t.tokRate
}

func progressLog(w io.Writer, run *sluice.Run, every time.Duration) func() {
	if every <= 0 {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		var rate rateTracker
		rate.update(0, 0)
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(w, "%s %s\n", time.Now().Format("15:04:05"), progressLine(run.Progress(), &rate))
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(stop); wg.Wait() }) }
}

func progressBars(e *env, run *sluice.Run) func() {
	// Auto refresh: --progress bar draws even when stderr is not a terminal.
	p := mpb.New(mpb.WithOutput(e.stderr), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())
	// The bar and the status line show one snapshot: the bar's count is the bar's own
	// state, and the status line is rendered from the snapshot that set it, so the two
	// never disagree by what finished between two looks.
	var mu sync.Mutex
	var rate rateTracker
	var line string
	// A total of 0 makes the bar's total settable: it grows as the input is ingested.
	bar := p.AddBar(0,
		mpb.PrependDecorators(
			decor.Name("requests "),
			decor.Any(func(st decor.Statistics) string { return fmt.Sprintf("%d/%d", st.Current, st.Total) }),
		),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)), // the ETA is in the status line
	)
	status := p.New(0, mpb.NopStyle(), mpb.BarFillerClearOnComplete(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			mu.Lock()
			defer mu.Unlock()
			return line
		})),
	)
	show := func() sluice.Progress {
		s := run.Progress()
		mu.Lock()
		line = progressLine(s, &rate)
		bar.SetTotal(max(s.Total, 1), false)
		bar.SetCurrent(s.Done + s.Failed)
		mu.Unlock()
		return s
	}
	show()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				show()
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			s := show()
			if s.IngestDone && s.Done+s.Failed >= s.Total {
				bar.SetTotal(max(s.Total, 1), true)
			} else {
				bar.Abort(false) // stopped early: the bar stays where the run stopped
			}
			status.SetTotal(-1, true)
			p.Wait()
		})
	}
}
