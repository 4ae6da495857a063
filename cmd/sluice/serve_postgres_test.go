package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-llm/sluice/internal/pgtest"
	"github.com/sluice-llm/sluice/sim"
)

// TestServeReplicasOnPostgres runs two sluice serve replicas on one PostgreSQL schema and
// one files directory: the SDK uploads to one, creates the batch on the other, polls the
// first until it completes, and reads the same exact output from both; the upstream got
// each request once.
func TestServeReplicasOnPostgres(t *testing.T) {
	storeURL, _ := pgtest.SchemaURL(t)
	const n = 40
	simSrv := sim.New(sim.Config{Seed: 5})
	defer simSrv.Close()
	up := httptest.NewServer(simSrv)
	defer up.Close()
	dir, files := t.TempDir(), t.TempDir()
	args := []string{"--store", storeURL, "--files-dir", files, "--base-url", up.URL + "/v1", "--concurrency", "4"}
	a := startServe(t, "sk-one", args...)
	b := startServe(t, "sk-one", args...)
	ca := openai.NewClient(option.WithBaseURL(a.base+"/v1/"), option.WithAPIKey("sk-one"), option.WithMaxRetries(0))
	cb := openai.NewClient(option.WithBaseURL(b.base+"/v1/"), option.WithAPIKey("sk-one"), option.WithMaxRetries(0))
	ctx := context.Background()
	data, err := os.ReadFile(writeRequests(t, dir, n))
	if err != nil {
		t.Fatal(err)
	}
	in, err := ca.Files.New(ctx, openai.FileNewParams{
		File:    openai.File(bytes.NewReader(data), "requests.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeBatch,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cb.Files.Get(ctx, in.ID); err != nil || got.Bytes != int64(len(data)) {
		t.Fatalf("the other replica's file %s: %+v, %v", in.ID, got, err)
	}
	created, err := cb.Batches.New(ctx, openai.BatchNewParams{InputFileID: in.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	done := pollBatch(t, ca, created.ID, func(b *openai.Batch) bool {
		switch b.Status {
		case openai.BatchStatusCompleted, openai.BatchStatusFailed, openai.BatchStatusExpired, openai.BatchStatusCancelled:
			return true
		}
		return false
	})
	if done.Status != openai.BatchStatusCompleted || done.RequestCounts.Completed != n || done.RequestCounts.Failed != 0 {
		t.Fatalf("batch: %s, %+v, errors %+v\n%s\n%s", done.Status, done.RequestCounts, done.Errors, a.log.String(), b.log.String())
	}
	outA := fileContent(t, ca, done.OutputFileID)
	if outB := fileContent(t, cb, done.OutputFileID); !bytes.Equal(outA, outB) {
		t.Errorf("the replicas serve different outputs:\n%s\n%s", outA, outB)
	}
	checkOutput(t, outA, n)
	if got := simSrv.Stats().Requests; got != n {
		t.Errorf("the upstream got %d requests, want %d: one replica ran the batch, once", got, n)
	}
	// The batch's usage is in the database: serve usage reads it from there.
	res := runCLI(t, nil, "serve", "usage", "--store", storeURL, "--json")
	var rep usageReport
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != exitOK {
		t.Fatalf("serve usage: exit %d, %v: %s %s", res.code, err, res.stdout, res.stderr)
	}
	if len(rep.Keys) != 1 || rep.Keys[0].Batches != 1 || rep.Keys[0].PromptTokens == 0 {
		t.Errorf("serve usage: %+v, want one key with the batch's tokens", rep.Keys)
	}
	// Both replicas list the batch, and the files, of the key.
	for name, c := range map[string]openai.Client{"a": ca, "b": cb} {
		page, err := c.Batches.List(ctx, openai.BatchListParams{})
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != created.ID {
			t.Errorf("replica %s lists batches %+v, %v; want %s", name, page, err, created.ID)
		}
		files, err := c.Files.List(ctx, openai.FileListParams{Purpose: openai.String("batch")})
		if err != nil || len(files.Data) != 1 || files.Data[0].ID != in.ID {
			t.Errorf("replica %s lists batch files %+v, %v; want %s", name, files, err, in.ID)
		}
	}
}

// fileContent reads a file's content through c.
func fileContent(t *testing.T, c openai.Client, id string) []byte {
	t.Helper()
	resp, err := c.Files.Content(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOutput checks that a batch output of writeRequests(n) has each custom_id once,
// with its own answer.
func checkOutput(t *testing.T, out []byte, n int) {
	t.Helper()
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l resultLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.CustomID == nil {
			t.Fatalf("output line %d: %v: %q", len(seen)+1, err, sc.Text())
		}
		id := *l.CustomID
		seen[id]++
		if l.Response == nil || l.Response.StatusCode != 200 || !strings.Contains(string(l.Response.Body), "ask "+id) {
			t.Errorf("result for %s is not its own answer: %q", id, sc.Text())
		}
	}
	for i := range n {
		if id := fmt.Sprintf("r%05d", i+1); seen[id] != 1 {
			t.Errorf("%s appears %d times in the output", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Errorf("output has %d custom_ids, want %d", len(seen), n)
	}
}
