package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-llm/sluice/report"
)

// scrapeCounter GETs a /metrics URL, parses it with the Prometheus text parser and adds
// up the counter name (or a histogram's count) over the series whose label key is value.
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
				total += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
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

// TestRunStream runs with --stream: the output is the Batch API shape, as without it,
// and the report gives the time to first token and tokens/s (TTFT only when streamed).
func TestRunStream(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 50)
	for _, stream := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprintf("out-%v.jsonl", stream))
		args := []string{"run", input, "-o", out, "--sim", "--store", filepath.Join(dir, "s.db"), "--json", "--progress", "none", "--new"}
		if stream {
			args = append(args, "--stream", "--stream-idle-timeout", "30s")
		}
		res := runCLI(t, nil, args...)
		if res.code != exitOK {
			t.Fatalf("stream %v: exit %d, stderr:\n%s", stream, res.code, res.stderr)
		}
		lines := readResults(t, out)
		checkResults(t, lines, 50)
		for _, l := range lines {
			if !strings.Contains(string(l.Response.Body), `"object":"chat.completion"`) {
				t.Fatalf("stream %v: output body %s is not a chat.completion", stream, l.Response.Body)
			}
		}
		var rep report.Job
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("--json report: %v\n%s", err, res.stdout)
		}
		if rep.TokensPerSecond == nil || rep.TokensPerSecond.P50 <= 0 {
			t.Errorf("stream %v: tokens_per_second %+v", stream, rep.TokensPerSecond)
		}
		switch {
		case !stream && rep.TTFTMS != nil:
			t.Errorf("ttft_ms without --stream: %+v", rep.TTFTMS)
		case stream && (rep.TTFTMS == nil || rep.TTFTMS.P50 < 10 || rep.TTFTMS.P99 < rep.TTFTMS.P50):
			// The simulator of --sim answers its first token after 20ms ± 30%.
			t.Errorf("ttft_ms %+v, want p50 of at least 10ms", rep.TTFTMS)
		}
	}
}

// TestStalledStreamsAreRetried runs the demo streamed against a simulator whose streams
// stall one time in ten: --stream-idle-timeout cuts them off, they are retried, and every
// request ends done.
func TestStalledStreamsAreRetried(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	res := runCLI(t, map[string]string{"XDG_DATA_HOME": t.TempDir()}, "demo", "--dir", dir, "-n", "100",
		"--progress", "none", "--json", "--seed", "3", "--error-rate", "0", "--reset-rate", "0",
		"--stream", "--stall-rate", "0.1", "--stream-idle-timeout", "300ms")
	if res.code != exitOK {
		t.Fatalf("demo: exit %d: %s", res.code, res.stderr)
	}
	var rep report.Job
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("--json report: %v\n%s", err, res.stdout)
	}
	if rep.Requests.Done != 100 || rep.UpstreamFaults == 0 || !strings.Contains(rep.LastError, "idle") || rep.TTFTMS == nil {
		t.Errorf("report: %d done, %d upstream faults (last %q), ttft %+v: want 100 done after idle streams were cut off",
			rep.Requests.Done, rep.UpstreamFaults, rep.LastError, rep.TTFTMS)
	}
}
