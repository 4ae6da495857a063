package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeCounter GETs a /metrics URL, parses it with the Prometheus text parser and adds
// up the counter name over the series whose label key is value.
func scrapeCounter(t *testing.T, url, name, key, value string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	var total float64
	for _, m := range mfs[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == key && l.GetValue() == value {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// TestRunLogsJSON checks --log-format json: with --log-level debug every attempt is a
// JSON object, one a line, naming its job, custom_id and the upstream's request id.
func TestRunLogsJSON(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 20)
	// A bad --metrics-addr is refused before anything is sent.
	res := runCLI(t, nil, "run", input, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none",
		"--metrics-addr", "127.0.0.1:notaport")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--metrics-addr") {
		t.Fatalf("bad --metrics-addr: exit %d, stderr %q", res.code, res.stderr)
	}
	res = runCLI(t, nil, "run", input, "--sim", "--store", filepath.Join(dir, "s.db"), "--progress", "none",
		"--metrics-addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "metrics on http://127.0.0.1:") {
		t.Errorf("stderr does not say where the metrics are: %q", res.stderr)
	}
	ids := map[string]bool{}
	for line := range strings.Lines(res.stderr) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec struct {
			Level, Msg, Job, CustomID, RequestID string
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		rec.Msg, _ = raw["msg"].(string)
		rec.Job, _ = raw["job"].(string)
		rec.CustomID, _ = raw["custom_id"].(string)
		rec.RequestID, _ = raw["request_id"].(string)
		if rec.Msg == "attempt" && strings.HasPrefix(rec.Job, "job_") && rec.RequestID != "" {
			ids[rec.CustomID] = true
		}
	}
	if len(ids) != 20 {
		t.Errorf("JSON attempt records name %d requests, want 20 (each with job and request ids):\n%s", len(ids), res.stderr)
	}
	res = runCLI(t, nil, "run", input, "--sim", "--log-format", "yaml")
	if res.code != exitUsage {
		t.Errorf("--log-format yaml: exit %d, want %d", res.code, exitUsage)
	}
}
