package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-llm/sluice/report"
	"github.com/sluice-llm/sluice/sim"
)

// outage is the simulator behind a switch: while down, it answers 503 to every request
// whose prompt ends in an odd digit. It counts the requests each prompt got.
type outage struct {
	sim  *sim.Server
	down atomic.Bool
	mu   sync.Mutex
	hits map[string]int
}

func (o *outage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	prompt := ""
	if json.Unmarshal(body, &req) == nil && len(req.Messages) > 0 {
		prompt = req.Messages[0].Content
	}
	o.mu.Lock()
	o.hits[prompt]++
	o.mu.Unlock()
	if o.down.Load() && prompt != "" && strings.ContainsAny(prompt[len(prompt)-1:], "13579") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"message":"the service is down","type":"server_error"}}`)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	o.sim.ServeHTTP(w, r)
}

func (o *outage) takeHits() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.hits
	o.hits = map[string]int{}
	return h
}

// TestRetryFailedAfterAnOutage: a job finished with failures during a provider's outage;
// run --retry-failed (and resume --retry-failed) sends the failed requests again and no
// done one.
func TestRetryFailedAfterAnOutage(t *testing.T) {
	for _, how := range []string{"run", "resume"} {
		t.Run(how, func(t *testing.T) {
			s := sim.New(sim.Config{Seed: 1})
			o := &outage{sim: s, hits: map[string]int{}}
			o.down.Store(true)
			srv := httptest.NewServer(o)
			defer srv.Close()
			defer s.Close()
			dir := t.TempDir()
			const n = 20
			input := writeRequests(t, dir, n)
			out, store := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "s.db")
			keys := map[string]string{"OPENAI_API_KEY": "sk-test"}
			args := []string{"run", input, "-o", out, "--base-url", srv.URL + "/v1", "--store", store, "--progress", "none", "--max-attempts", "1", "--concurrency", "2", "--json"}
			res := runCLI(t, keys, args...)
			if res.code != exitFailed {
				t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, exitFailed, res.stderr)
			}
			var rep report.Job
			if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Requests.Done != n/2 || rep.Requests.Failed != n/2 {
				t.Fatalf("during the outage: %d done, %d failed; want %d each", rep.Requests.Done, rep.Requests.Failed, n/2)
			}
			o.takeHits()
			o.down.Store(false)

			retry := append(args, "--retry-failed")
			if how == "resume" {
				retry = []string{"resume", rep.Job, "--store", store, "--progress", "none", "--retry-failed"}
			}
			res = runCLI(t, keys, retry...)
			if res.code != exitOK {
				t.Fatalf("retry: exit %d; stderr:\n%s", res.code, res.stderr)
			}
			if !strings.Contains(res.stderr, "sending 10 failed requests again") {
				t.Errorf("stderr does not say what is retried:\n%s", res.stderr)
			}
			checkResults(t, readResults(t, out), n)
			hits := o.takeHits()
			if len(hits) != n/2 {
				t.Errorf("the retry sent %d prompts, want the %d that failed: %v", len(hits), n/2, hits)
			}
			for p, c := range hits {
				if !strings.ContainsAny(p[len(p)-1:], "13579") || c != 1 {
					t.Errorf("the retry sent %q %d times; done requests must not be sent again", p, c)
				}
			}
		})
	}
}

func TestRetryFailedRefusedForHybrid(t *testing.T) {
	dir := t.TempDir()
	input := writeRequests(t, dir, 2)
	res := runCLI(t, map[string]string{"OPENAI_API_KEY": "sk-test"}, "run", input, "--base-url", "http://127.0.0.1:9/v1", "--store", filepath.Join(dir, "s.db"), "--mode", "hybrid", "--deadline", "1h", "--retry-failed")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--retry-failed works on online jobs; this job runs in hybrid mode") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestRetryFailedWithTheSimulator: a simulator that fails a third of its requests with
// 5xx, then one that does not: resume --retry-failed sends it exactly the failed ones.
func TestRetryFailedWithTheSimulator(t *testing.T) {
	faulty := sim.New(sim.Config{Seed: 3, Error5xx: 0.33})
	healthy := sim.New(sim.Config{Seed: 4})
	srvA, srvB := httptest.NewServer(faulty), httptest.NewServer(healthy)
	defer srvA.Close()
	defer srvB.Close()
	defer faulty.Close()
	defer healthy.Close()
	dir := t.TempDir()
	const n = 150
	input := writeRequests(t, dir, n)
	out, store := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "s.db")
	keys := map[string]string{"OPENAI_API_KEY": "sk-test"}
	res := runCLI(t, keys, "run", input, "-o", out, "--base-url", srvA.URL+"/v1", "--store", store, "--progress", "none", "--max-attempts", "1", "--json")
	var rep report.Job
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s", res.code, err, res.stderr)
	}
	if res.code != exitFailed || rep.Requests.Failed == 0 || rep.Requests.Done+rep.Requests.Failed != n {
		t.Fatalf("exit %d, %d done, %d failed", res.code, rep.Requests.Done, rep.Requests.Failed)
	}
	res = runCLI(t, keys, "resume", rep.Job, "--base-url", srvB.URL+"/v1", "--store", store, "--progress", "none", "--retry-failed")
	if res.code != exitOK {
		t.Fatalf("retry: exit %d; stderr:\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), n)
	if got := healthy.Stats().Requests; got != rep.Requests.Failed {
		t.Errorf("the retry sent %d requests, want the %d that failed", got, rep.Requests.Failed)
	}
}
