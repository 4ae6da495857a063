package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/report"
)

// messyUpstream answers every other request's first attempt the way real providers and the
// proxies in front of them sometimes do, and its second attempt properly (with no
// rate-limit headers at all, like many providers).
type messyUpstream struct {
	mu       sync.Mutex
	attempts map[string]int
}

var messyFirstAnswers = []func(w http.ResponseWriter){
	func(w http.ResponseWriter) { // an nginx error page
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
	},
	func(w http.ResponseWriter) { // plain text from a load balancer
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "upstream connect error or disconnect/reset before headers")
	},
	func(w http.ResponseWriter) { // a 429 with a numeric code and no retry-after
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"message":"Requests rate limit exceeded","code":1302}}`)
	},
	func(w http.ResponseWriter) { // a 200 cut off mid-body
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-x","object":"chat.completion","choices":[{"index":0,"mess`)
	},
	func(w http.ResponseWriter) { // the connection drops before any answer
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("no hijacker")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
	},
	func(w http.ResponseWriter) { // Ollama-style error string, 500
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":"llama runner process has terminated"}`)
	},
	func(w http.ResponseWriter) { // a provider's failure passed on as a 200 (OpenRouter)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"error":{"message":"Provider returned error","code":502,"metadata":{"provider_name":"X"}},"user_id":"u"}`)
	},
	func(w http.ResponseWriter) { // a rate limit passed on as a 200 (OpenRouter)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"error":{"message":"Rate limit exceeded: free-models-per-min.","code":429}}`)
	},
}

func (m *messyUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	prompt := req.Messages[len(req.Messages)-1].Content
	m.mu.Lock()
	m.attempts[prompt]++
	n := m.attempts[prompt]
	m.mu.Unlock()
	var i int
	_, _ = fmt.Sscanf(prompt, "ask r%d", &i)
	if n == 1 && i%2 == 1 { // every other request: with all failing, the breaker would open
		messyFirstAnswers[(i/2)%len(messyFirstAnswers)](w)
		return
	}
	// A correct answer, served as text/plain by a careless gateway.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, `{"id":"chatcmpl-%d","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"echo: %s"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`, n, prompt)
}

// TestMessyUpstream runs requests through an upstream that fails half the first attempts,
// each in one of several messy ways: every request still ends once, with its own answer.
func TestMessyUpstream(t *testing.T) {
	up := &messyUpstream{attempts: map[string]int{}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	dir := t.TempDir()
	const n = 64 // every messy answer 4 times
	input := writeRequests(t, dir, n)
	out := filepath.Join(dir, "out.jsonl")
	res := runCLI(t, nil, "run", input, "-o", out, "--base-url", srv.URL+"/v1", "--store", filepath.Join(dir, "s.db"),
		"--progress", "none", "--json", "--concurrency", "16")
	if res.code != exitOK {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), n)
	var rep report.Job
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Retries != n/2 || rep.Attempts != n+n/2 {
		t.Errorf("attempts %d, retries %d; want %d and %d (one retry for each messy answer)", rep.Attempts, rep.Retries, n+n/2, n/2)
	}
	if want := int64(2 * n / 2 / len(messyFirstAnswers)); rep.Throttled != want { // two messy answers are 429s
		t.Errorf("throttled %d, want %d", rep.Throttled, want)
	}
	if strings.Contains(res.stderr, "panic") {
		t.Errorf("stderr: %s", res.stderr)
	}
}

// TestKeyRevokedMidRun runs requests through an upstream that answers the first 1000 and
// then rejects the key (revoked mid-run, 401) until it is replaced: the run stops at once
// with exit 4 naming the rejected key, fails no request, and a resume with the new key
// finishes every request exactly once.
func TestKeyRevokedMidRun(t *testing.T) {
	const n, good = 3000, 1000
	var mu sync.Mutex
	served, rejected := 0, 0
	revoked := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prompt := promptOf(r)
		mu.Lock()
		ok := served < good || !revoked
		if ok {
			served++
		} else {
			rejected++
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided: sk-re***ked.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			return
		}
		writeEcho(w, prompt)
	}))
	defer srv.Close()
	dir := t.TempDir()
	input := writeRequests(t, dir, n)
	out := filepath.Join(dir, "out.jsonl")
	args := []string{"run", input, "-o", out, "--base-url", srv.URL + "/v1", "--store", filepath.Join(dir, "s.db"),
		"--progress", "none", "--concurrency", "16"}
	res := runCLI(t, nil, args...)
	if res.code != exitAborted || !strings.Contains(res.stderr, "API key rejected") {
		t.Fatalf("exit %d, want %d naming the rejected key\n%s", res.code, exitAborted, res.stderr)
	}
	mu.Lock()
	// At most: the 16 in flight when the key was revoked; one sent in the slot of each of
	// those answered 200 before it (their answers freed slots the dispatcher filled, and
	// those requests met the revoked key); and one in the slot of each of the first two
	// 401s (authStreak is 3), which a slow machine may send before the third is handled.
	// Failing each request instead of stopping would send all 2,000 left.
	if rejected > 16+16+2 {
		t.Errorf("%d requests sent with the revoked key, want at most 16 in flight, 16 sent as the last 200s came back and 2 after the first 401s", rejected)
	}
	revoked = false
	mu.Unlock()
	if errs, err := os.ReadFile(filepath.Join(dir, "out.errors.jsonl")); err == nil && len(errs) > 0 {
		t.Fatalf("requests failed for the revoked key: %.300s", errs)
	}
	res = runCLI(t, nil, args...)
	if res.code != exitOK {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), n)
}

// TestLone401Retried: a proxy that refuses one request with a 401 between successes
// does not stop the run, and the request succeeds on its next attempt.
func TestLone401Retried(t *testing.T) {
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prompt := promptOf(r)
		refuse := false
		if prompt == "ask r00003" {
			once.Do(func() { refuse = true })
		}
		w.Header().Set("Content-Type", "application/json")
		if refuse {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Authentication required","type":"auth_error"}}`)
			return
		}
		writeEcho(w, prompt)
	}))
	defer srv.Close()
	runAnswersAll(t, srv.URL, 6, 1)
}

// TestProxy404Window runs requests through a proxy that, after 20 answers, answers the
// next 30 requests with its own HTML 404 page (a route briefly missing while it reloads)
// and then answers again: a 404 on a path that has answered is retried, and every
// request ends with its own answer.
func TestProxy404Window(t *testing.T) {
	var mu sync.Mutex
	seen := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prompt := promptOf(r)
		mu.Lock()
		seen++
		missing := seen > 20 && seen <= 50
		mu.Unlock()
		if missing {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>")
			return
		}
		writeEcho(w, prompt)
	}))
	defer srv.Close()
	runAnswersAll(t, srv.URL, 100, 4)
}

// runAnswersAll runs n requests through the upstream at url with the given concurrency,
// and checks that the run succeeds with every request's own answer.
func runAnswersAll(t *testing.T, url string, n, concurrency int) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	res := runCLI(t, nil, "run", writeRequests(t, dir, n), "-o", out, "--base-url", url+"/v1", "--store", filepath.Join(dir, "s.db"),
		"--progress", "none", "--concurrency", strconv.Itoa(concurrency))
	if res.code != exitOK {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	checkResults(t, readResults(t, out), n)
}

// promptOf reads the last user message of a chat request ("" when there is none).
func promptOf(r *http.Request) string {
	var req struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	if json.NewDecoder(r.Body).Decode(&req) != nil || len(req.Messages) == 0 {
		return ""
	}
	return req.Messages[len(req.Messages)-1].Content
}

// writeEcho answers a chat request with its prompt echoed.
func writeEcho(w http.ResponseWriter, prompt string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"echo: %s"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`, prompt)
}
