package openai

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	sluicehttp "github.com/sluice-llm/sluice/http"
	"github.com/sluice-llm/sluice/internal/testutil"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

// serveKey is the client key the in-process sluice serve accepts.
const serveKey = "sk-serve-test-0123456789"

// startServe runs `sluice serve` in process over a simulator, with input files limited
// to maxBytes, and returns a Client of it that presents key.
func startServe(t *testing.T, maxBytes int64, key string, simCfg ...sim.Config) *Client {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := sim.Config{Seed: 1}
	if len(simCfg) > 0 {
		cfg = simCfg[0]
	}
	sm := sim.New(cfg)
	t.Cleanup(sm.Close)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	up, err := New(Config{BaseURL: "http://sim.sluice.invalid/v1", HTTPClient: &http.Client{Transport: sm.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: 4, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(ctx, service.Config{
		Store:     st,
		FilesDir:  filepath.Join(dir, "files"),
		Routes:    []service.Route{{Name: "sim", Engine: eng}},
		KeyHashes: []string{service.HashKey(serveKey)},
		MaxBytes:  maxBytes,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := sluicehttp.NewServer(svc, nil)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return newClient(t, ts, func(c *Config) { c.APIKey = key })
}

func batchInput(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello %d"}],"max_tokens":5}}`+"\n", i, i)
	}
	return b.String()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls the batch until it is terminal; polling is the Batch API's protocol.
func waitFor(t *testing.T, c *Client, id string) *sluice.Batch {
	t.Helper()
	ctx := testCtx(t)
	return testutil.Poll(t, 30*time.Second, 10*time.Millisecond, func() (*sluice.Batch, error) { return c.Batch(ctx, id) },
		func(b *sluice.Batch) bool { return b.Status.Terminal() })
}

// submit uploads batchInput(n) and creates a batch of it.
func submit(t *testing.T, c *Client, n int) *sluice.Batch {
	t.Helper()
	ctx := testCtx(t)
	f, err := c.UploadFile(ctx, "input.jsonl", strings.NewReader(batchInput(n)))
	if err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	b, err := c.CreateBatch(ctx, f.ID, sluice.EndpointChatCompletions, "24h", nil)
	if err != nil {
		t.Fatalf("CreateBatch: %v", err)
	}
	return b
}

func TestBatchRoundTripAgainstServe(t *testing.T) {
	c := startServe(t, 0, serveKey)
	ctx := testCtx(t)
	const n = 5
	f, err := c.UploadFile(ctx, "input.jsonl", strings.NewReader(batchInput(n)))
	if err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	if f.ID == "" || f.Purpose != sluice.PurposeBatch || f.Filename != "input.jsonl" || f.Bytes != int64(len(batchInput(n))) {
		t.Fatalf("file = %+v", f)
	}
	b, err := c.CreateBatch(ctx, f.ID, sluice.EndpointChatCompletions, "24h", map[string]string{"job": "j1"})
	if err != nil {
		t.Fatalf("CreateBatch: %v", err)
	}
	if b.InputFileID != f.ID || b.Metadata["job"] != "j1" || b.CompletionWindow != "24h" {
		t.Fatalf("batch = %+v", b)
	}
	b = waitFor(t, c, b.ID)
	if b.Status != sluice.BatchCompleted || b.OutputFileID == nil || b.RequestCounts != (sluice.RequestCounts{Total: n, Completed: n}) {
		t.Fatalf("finished batch: status %s, output %v, counts %+v", b.Status, b.OutputFileID, b.RequestCounts)
	}
	if b.CompletedAt == nil || b.InProgressAt == nil {
		t.Errorf("timestamps missing: %+v", b)
	}
	rc, err := c.FileContent(ctx, *b.OutputFileID)
	if err != nil {
		t.Fatalf("FileContent: %v", err)
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		var line struct {
			CustomID string `json:"custom_id"`
			Response struct {
				StatusCode int `json:"status_code"`
			} `json:"response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		if line.Response.StatusCode != 200 {
			t.Errorf("%s: status %d", line.CustomID, line.Response.StatusCode)
		}
		seen[line.CustomID]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	for i := range n {
		if id := fmt.Sprintf("req-%d", i); seen[id] != 1 {
			t.Errorf("%s in output %d times", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Errorf("output has %d custom ids, want %d", len(seen), n)
	}
	if err := c.DeleteFile(ctx, f.ID); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	_, err = c.FileContent(ctx, f.ID)
	if ue := asUpstream(t, err); ue.StatusCode != http.StatusNotFound {
		t.Errorf("content of deleted file: %v, want 404", err)
	}
}

func asUpstream(t *testing.T, err error) *sluice.UpstreamError {
	t.Helper()
	var ue *sluice.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("error = %T %v, want an *sluice.UpstreamError", err, err)
	}
	return ue
}

func TestUploadFileOverLimitGivesProviderMessage(t *testing.T) {
	c := startServe(t, 1024, serveKey)
	_, err := c.UploadFile(testCtx(t), "big.jsonl", strings.NewReader(batchInput(100)))
	ue := asUpstream(t, err)
	if ue.StatusCode != http.StatusRequestEntityTooLarge || ue.Code != "file_too_large" ||
		!strings.Contains(ue.Message, "larger than the 1024 bytes allowed") {
		t.Errorf("error = %+v", ue)
	}
}

func TestBadKeyIsUpstreamError401(t *testing.T) {
	const wrong = "sk-wrong-key-abcdefgh"
	c := startServe(t, 0, wrong)
	ctx := testCtx(t)
	_, err := c.UploadFile(ctx, "input.jsonl", strings.NewReader(batchInput(1)))
	if ue := asUpstream(t, err); ue.StatusCode != http.StatusUnauthorized || ue.Code != "invalid_api_key" {
		t.Errorf("UploadFile: %+v", ue)
	}
	_, err = c.Batch(ctx, "batch_x")
	if ue := asUpstream(t, err); ue.StatusCode != http.StatusUnauthorized {
		t.Errorf("Batch: %+v", ue)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error shows the key: %v", err)
	}
}

func TestCancelBatchAgainstServe(t *testing.T) {
	c := startServe(t, 0, serveKey, sim.Config{Seed: 1, TTFT: 20 * time.Millisecond})
	ctx := testCtx(t)
	b := submit(t, c, 300)
	// Cancel a batch that is running.
	b = testutil.Poll(t, 30*time.Second, 10*time.Millisecond, func() (*sluice.Batch, error) { return c.Batch(ctx, b.ID) },
		func(b *sluice.Batch) bool { return b.RequestCounts.Completed >= 5 })
	cb, err := c.CancelBatch(ctx, b.ID)
	if err != nil {
		t.Fatalf("CancelBatch: %v", err)
	}
	if cb.ID != b.ID || (cb.Status != sluice.BatchCancelling && cb.Status != sluice.BatchCancelled) {
		t.Fatalf("cancel answer: %s %s", cb.ID, cb.Status)
	}
	if got := waitFor(t, c, b.ID); got.Status != sluice.BatchCancelled || got.CancelledAt == nil {
		t.Errorf("status after cancel = %s", got.Status)
	}
	_, err = c.CancelBatch(ctx, "batch_missing")
	if ue := asUpstream(t, err); ue.StatusCode != http.StatusNotFound {
		t.Errorf("cancel of a missing batch: %+v", ue)
	}
}

// TestUploadFileScripted checks the wire form of an upload and the errors of answers
// sluice serve does not give: a wrong purpose, a non-JSON success, a failing reader.
func TestUploadFileScripted(t *testing.T) {
	t.Run("form and rejection", func(t *testing.T) {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/files" || r.Header.Get("Authorization") != "Bearer "+testKey {
				t.Errorf("request %s %s", r.URL.Path, r.Header.Get("Authorization"))
			}
			if r.ContentLength != -1 {
				t.Errorf("ContentLength = %d, want a streamed (chunked) body", r.ContentLength)
			}
			if err := r.ParseMultipartForm(1 << 20); err != nil {
				t.Fatal(err)
			}
			if p := r.FormValue("purpose"); p != sluice.PurposeBatch {
				t.Errorf("purpose = %q", p)
			}
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"Invalid file format for Batch API. Must be .jsonl","type":"invalid_request_error","param":null,"code":"invalid_file_format"}}`)
		})
		_, err := newClient(t, srv).UploadFile(testCtx(t), "in.jsonl", strings.NewReader("{}\n"))
		ue := asUpstream(t, err)
		if ue.StatusCode != 400 || ue.Code != "invalid_file_format" || ue.Type != "invalid_request_error" ||
			ue.Message != "Invalid file format for Batch API. Must be .jsonl" {
			t.Errorf("error = %+v", ue)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		srv := serve(t, answer(200, "<html>ok</html>", "Content-Type", "text/html"))
		_, err := newClient(t, srv).Batch(testCtx(t), "batch_1")
		if ue := asUpstream(t, err); ue.Code != sluice.CodeInvalidResponse {
			t.Errorf("error = %+v", ue)
		}
	})
	t.Run("reader fails", func(t *testing.T) {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })
		boom := errors.New("disk gone")
		_, err := newClient(t, srv).UploadFile(testCtx(t), "in.jsonl", io.MultiReader(strings.NewReader("{}\n"), failing{boom}))
		if !errors.Is(err, boom) {
			t.Errorf("error = %v, want it to wrap %v", err, boom)
		}
	})
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

func TestListBatchesAgainstServe(t *testing.T) {
	c := startServe(t, 0, serveKey)
	ctx := testCtx(t)
	var ids []string // oldest first
	for range 3 {
		ids = append(ids, submit(t, c, 1).ID)
	}
	t.Cleanup(func() { // let the batches finish before the server stops
		for _, id := range ids {
			waitFor(t, c, id)
		}
	})
	page, more, err := c.ListBatches(ctx, "", 2)
	if err != nil {
		t.Fatalf("ListBatches: %v", err)
	}
	if got := batchIDs(page); !more || !slices.Equal(got, []string{ids[2], ids[1]}) {
		t.Fatalf("first page = %v, more %v; want [%s %s], more", got, more, ids[2], ids[1])
	}
	page, more, err = c.ListBatches(ctx, page[1].ID, 2)
	if err != nil {
		t.Fatalf("ListBatches after %s: %v", ids[1], err)
	}
	if got := batchIDs(page); more || !slices.Equal(got, []string{ids[0]}) {
		t.Fatalf("second page = %v, more %v; want [%s], no more", got, more, ids[0])
	}
	if page[0].InputFileID == "" || page[0].Object != "batch" {
		t.Errorf("listed batch = %+v", page[0])
	}
}

func batchIDs(bs []sluice.Batch) []string {
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	return ids
}

// TestListBatchesScripted checks the query ListBatches sends, its reading of OpenAI's list
// object, and an answer sluice serve does not give: a proxy's HTML 500 page.
func TestListBatchesScripted(t *testing.T) {
	const page = `{"object": "list", "data": [{"id": "batch_b", "object": "batch", "endpoint": "/v1/chat/completions", "status": "completed", "request_counts": {"total": 2, "completed": 2, "failed": 0}}], "first_id": "batch_b", "last_id": "batch_b", "has_more": true}`
	for _, tc := range []struct {
		name      string
		after     string
		limit     int
		wantQuery string
	}{
		{"first page", "", 2, "limit=2"},
		{"after an id", "batch_a", 100, "after=batch_a&limit=100"},
		{"provider's page size", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/v1/batches" || r.URL.RawQuery != tc.wantQuery {
					t.Errorf("request %s %s?%s, want GET /v1/batches?%s", r.Method, r.URL.Path, r.URL.RawQuery, tc.wantQuery)
				}
				_, _ = io.WriteString(w, page)
			})
			bs, more, err := newClient(t, srv).ListBatches(testCtx(t), tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			want := sluice.RequestCounts{Total: 2, Completed: 2}
			if len(bs) != 1 || bs[0].ID != "batch_b" || bs[0].Status != sluice.BatchCompleted || bs[0].RequestCounts != want || !more {
				t.Errorf("ListBatches = %+v, more %v", bs, more)
			}
		})
	}
	t.Run("HTML 500", func(t *testing.T) {
		srv := serve(t, answer(http.StatusInternalServerError, "<html><head><title>500 Internal Server Error</title></head><body><center><h1>500 Internal Server Error</h1></center><hr><center>nginx</center></body></html>", "Content-Type", "text/html"))
		bs, more, err := newClient(t, srv).ListBatches(testCtx(t), "", 2)
		if bs != nil || more {
			t.Errorf("ListBatches gave %v, more %v with its error", bs, more)
		}
		if ue := asUpstream(t, err); ue.StatusCode != http.StatusInternalServerError || !ue.Retryable() {
			t.Errorf("error = %+v", ue)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "list batches: ") || !strings.Contains(msg, "500") || strings.Contains(msg, testKey) {
			t.Errorf("error = %q, want it to start with the operation, name the status and not show the key", msg)
		}
	})
}

func TestBatchResultsAgainstServe(t *testing.T) {
	c := startServe(t, 0, serveKey)
	ctx := testCtx(t)
	const n = 7
	b := waitFor(t, c, submit(t, c, n).ID)
	if b.Status != sluice.BatchCompleted || b.OutputFileID == nil {
		t.Fatalf("batch ended %s, output %v", b.Status, b.OutputFileID)
	}
	seen := map[string]int{}
	var line int64
	err := c.BatchResults(ctx, *b.OutputFileID, func(r *sluice.BatchResult) error {
		line++
		if r.Invalid != "" || r.Line != line || r.StatusCode != http.StatusOK || r.Usage.PromptTokens <= 0 || r.Usage.CompletionTokens <= 0 || !json.Valid(r.Body) {
			t.Errorf("result %+v", r)
		}
		seen[r.CustomID]++
		return nil
	})
	if err != nil {
		t.Fatalf("BatchResults: %v", err)
	}
	for i := range n {
		if id := fmt.Sprintf("req-%d", i); seen[id] != 1 {
			t.Errorf("%s in the results %d times", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Errorf("results have %d custom ids, want %d", len(seen), n)
	}
	err = c.BatchResults(ctx, "file-missing", func(*sluice.BatchResult) error {
		t.Error("fn called for a missing file")
		return nil
	})
	if ue := asUpstream(t, err); ue.StatusCode != http.StatusNotFound {
		t.Errorf("results of a missing file: %v, want 404", err)
	}
}
