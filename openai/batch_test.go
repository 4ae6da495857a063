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
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	sluicehttp "github.com/sluice-llm/sluice/http"
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
	srv, err := sluicehttp.New(ctx, sluicehttp.Config{
		Store:     st,
		FilesDir:  filepath.Join(dir, "files"),
		Upstreams: []sluicehttp.Upstream{{Name: "sim", Engine: eng}},
		KeyHashes: []string{sluicehttp.HashKey(serveKey)},
		MaxBytes:  maxBytes,
	})
	if err != nil {
		t.Fatal(err)
	}
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
	for {
		b, err := c.Batch(ctx, id)
		if err != nil {
			t.Fatalf("Batch: %v", err)
		}
		if b.Status.Terminal() {
			return b
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	f, err := c.UploadFile(ctx, "input.jsonl", strings.NewReader(batchInput(300)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateBatch(ctx, f.ID, sluice.EndpointChatCompletions, "24h", nil)
	if err != nil {
		t.Fatal(err)
	}
	for b.RequestCounts.Completed < 5 { // cancel a batch that is running
		time.Sleep(10 * time.Millisecond)
		if b, err = c.Batch(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
	}
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
			io.WriteString(w, `{"error":{"message":"Invalid file format for Batch API. Must be .jsonl","type":"invalid_request_error","param":null,"code":"invalid_file_format"}}`)
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
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
		boom := errors.New("disk gone")
		_, err := newClient(t, srv).UploadFile(testCtx(t), "in.jsonl", io.MultiReader(strings.NewReader("{}\n"), failing{boom}))
		if !errors.Is(err, boom) {
			t.Errorf("error = %v, want it to wrap %v", err, boom)
		}
	})
}

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }
