package service_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	sluiceopenai "github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

// newService is a service over a store in dir and the simulator, closed at the end of
// the test.
func newService(t testing.TB, dir string, keys ...string) *service.Service {
	t.Helper()
	return newServiceWith(t, dir, nil, keys...)
}

// newServiceWith is newService with its config changed by edit.
func newServiceWith(t testing.TB, dir string, edit func(*service.Config), keys ...string) *service.Service {
	t.Helper()
	ctx := context.Background()
	s := sim.New(sim.Config{Seed: 1})
	t.Cleanup(s.Close)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	up, err := sluiceopenai.New(sluiceopenai.Config{BaseURL: "http://sim.sluice.invalid/v1",
		HTTPClient: &http.Client{Transport: s.Transport()}})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	cfg := service.Config{Store: st, FilesDir: filepath.Join(dir, "files"),
		Routes: []service.Route{{Name: "sim", Engine: eng}}}
	for _, k := range keys {
		cfg.KeyHashes = append(cfg.KeyHashes, service.HashKey(k))
	}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := service.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return svc
}

func input(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi %d"}],"max_tokens":5}}`+"\n", i, i)
	}
	return b.String()
}

// wait polls the batch, as a client does, until it is final.
func wait(t testing.TB, svc *service.Service, tenant, id string) *sluice.Batch {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := svc.Batch(context.Background(), tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		if b.Status.Terminal() {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s still %s", id, b.Status)
		}
		time.Sleep(5 * time.Millisecond) // the service's protocol is polling
	}
}

// TestServiceFromGo: a batch runs through the Go API alone, and each failure is the
// domain error its caller can tell apart by code.
func TestServiceFromGo(t *testing.T) {
	ctx := context.Background()
	svc := newService(t, t.TempDir(), "sk-alice", "sk-bob")
	alice, _, _ := svc.Authenticate("sk-alice")
	bob, _, _ := svc.Authenticate("sk-bob")

	f, err := svc.CreateFile(ctx, alice, sluice.PurposeBatch, "in.jsonl", strings.NewReader(input(10)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateBatch(ctx, alice, service.CreateBatchParams{InputFileID: f.ID,
		Endpoint: "/v1/chat/completions", CompletionWindow: service.CompletionWindow})
	if err != nil {
		t.Fatal(err)
	}
	b = wait(t, svc, alice, b.ID)
	if b.Status != sluice.BatchCompleted || b.RequestCounts.Completed != 10 || b.OutputFileID == nil {
		t.Fatalf("batch %s, counts %+v", b.Status, b.RequestCounts)
	}

	tests := []struct {
		name         string
		call         func() error
		code, reason string
		param        string
	}{
		{"another tenant's batch", func() error { _, err := svc.Batch(ctx, bob, b.ID); return err }, service.ENOTFOUND, "not_found", ""},
		{"another tenant's file", func() error { _, err := svc.File(ctx, bob, f.ID); return err }, service.ENOTFOUND, "not_found", ""},
		{"cancel a completed batch", func() error { _, err := svc.CancelBatch(ctx, alice, b.ID); return err }, service.ECONFLICT, "batch_not_cancellable", ""},
		{"an unknown endpoint", func() error {
			_, err := svc.CreateBatch(ctx, alice, service.CreateBatchParams{InputFileID: f.ID, Endpoint: "/v1/nope", CompletionWindow: "24h"})
			return err
		}, service.EINVALID, "", "endpoint"},
		{"a wrong purpose", func() error {
			_, err := svc.CreateFile(ctx, alice, "fine-tune", "x.jsonl", strings.NewReader(input(1)))
			return err
		}, service.EINVALID, "", "purpose"},
		{"a list after nothing", func() error {
			_, err := svc.ListBatches(ctx, alice, service.ListParams{After: "batch_nope"})
			return err
		}, service.EINVALID, "", "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *service.Error
			if service.ErrorCode(err) != tt.code || !asError(err, &e) || e.Reason != tt.reason || e.Param != tt.param {
				t.Errorf("err %v; want code %s, reason %q, param %q", err, tt.code, tt.reason, tt.param)
			}
		})
	}
}

func asError(err error, e **service.Error) bool { return errors.As(err, e) }

// TestBudgetPool: a key with a budget has one pool for the period, shared by whoever
// asks (its batches, an online gateway); a key without one has none.
func TestBudgetPool(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	svc := newServiceWith(t, dir, func(c *service.Config) {
		c.Keys = []service.Key{{Name: "capped", Hash: service.HashKey("sk-capped"), Budget: service.KeyBudget{MaxTokens: 1000}}}
	}, "sk-free")
	capped, _, _ := svc.Authenticate("sk-capped")
	free, _, _ := svc.Authenticate("sk-free")
	p1, err := svc.BudgetPool(ctx, capped)
	if err != nil || p1 == nil {
		t.Fatalf("capped key: pool %v, %v", p1, err)
	}
	if p2, _ := svc.BudgetPool(ctx, capped); p2 != p1 {
		t.Error("a second call made another pool: the key's budget would be spent twice over")
	}
	if p, err := svc.BudgetPool(ctx, free); p != nil || err != nil {
		t.Errorf("key without a budget: pool %v, %v", p, err)
	}
}

// The SQLite store keeps everything the service needs.
var _ service.Store = (*sqlite.Store)(nil)
