package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/report"
)

// The progress line names why the upstream is failing, not only that the circuit is open.
func TestProgressLineShowsTheCause(t *testing.T) {
	p := sluice.Progress{Total: 10, IngestDone: true, BreakerOpen: true, Faults: 30,
		FailingSince: time.Now().Add(-42 * time.Second),
		LastError:    "upstream connection_error: POST http://127.0.0.1:1/v1/chat/completions: connect: connection refused"}
	var rate rateTracker
	line := progressLine(p, &rate)
	for _, want := range []string{"upstream failing for 42s", "circuit open", "connection refused"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
}

// The report says how many answers' usage sluice counted, and the upstream's faults.
func TestReportShowsCountedUsageAndFaults(t *testing.T) {
	r := &report.Job{Job: "job_1", State: "completed", FailuresByCode: map[string]int64{}}
	r.AddRun(sluice.Progress{UsageCounted: 39, Faults: 3, LastError: "upstream status 502: Bad Gateway"})
	var out bytes.Buffer
	printJobReport(&out, r)
	for _, want := range []string{"usage of 39 answers counted by sluice", "upstream faults", "502: Bad Gateway"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	var js bytes.Buffer
	if err := writeJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"usage_counted_by_sluice": 39`, `"upstream_faults": 3`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("JSON report lacks %s:\n%s", want, js.String())
		}
	}
}
