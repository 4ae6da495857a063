package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/sluice-llm/sluice"
)

// reportFailures is how many failed requests a report lists.
const reportFailures = 1000

// ReportConfig configures WriteReport.
type ReportConfig struct {
	// Store holds the job; it must be a sluice.TimelineStore for the charts and the
	// failed requests.
	Store sluice.Store
	// Cost prices usage, for a job without a timeline; nil shows no cost for it.
	Cost func(model string, u sluice.Usage) float64
	// Title names the page ("sluice").
	Title string
	// MaxPoints bounds a chart's points (DefaultMaxPoints); Interval is the bucket width
	// of a timeline built from the ledger (timeline.DefaultInterval).
	MaxPoints int
	Interval  time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// WriteReport writes one self-contained HTML page about a job to w: the dashboard's
// summary, charts and failed requests (the first 1000), with every script and style
// inline, so that it can be attached to a ticket and opened anywhere. A job without a
// timeline has its charts built from its ledger.
func WriteReport(ctx context.Context, w io.Writer, jobID string, cfg ReportConfig) error {
	h, err := New(Config{Store: cfg.Store, Cost: cfg.Cost, Title: cfg.Title, MaxPoints: cfg.MaxPoints,
		Interval: cfg.Interval, Now: cfg.Now})
	if err != nil {
		return err
	}
	job, err := cfg.Store.Job(ctx, jobID)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	jv, err := h.view(ctx, job, false)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	jv.Live = false // a report is a snapshot
	bs, err := h.timeline(ctx, job)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	ledger := h.isLedger(job.ID)
	if len(bs) == 0 && h.ts != nil {
		// A running job without a timeline: its ledger still tells what is final.
		if bs, err = h.fromLedger(ctx, job.ID); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		ledger = true
	}
	d := chart(downsample(bs, h.cfg.MaxPoints))
	d.Ledger = ledger
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	fl := &failureList{JobID: job.ID, Codes: jv.Errors, Unavailable: h.ts == nil, Static: true}
	if h.ts != nil {
		if fl.Rows, err = h.ts.Failures(ctx, job.ID, 0, "", reportFailures); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	p := page{Title: h.cfg.Title, Assets: inlineAssets(), Job: jv, Failures: fl, Static: true,
		ChartJSON: template.JS(data), Generated: h.cfg.Now()} //nolint:gosec // JSON of our own numbers and codes
	if err := h.tmpl.ExecuteTemplate(w, "page", p); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
