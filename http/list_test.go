package http_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/sim"
)

// listPage is a list answer, as the API sends it.
type listPage struct {
	Data []struct {
		ID      string `json:"id"`
		Purpose string `json:"purpose"`
	} `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

// page gets one list page and checks that first_id and last_id match its data.
func (h *harness) page(key, path string) listPage {
	h.t.Helper()
	status, body := h.call(key, "GET", path, nil)
	if status != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var p listPage
	if err := json.Unmarshal(body, &p); err != nil {
		h.t.Fatal(err)
	}
	switch n := len(p.Data); {
	case n == 0 && (p.FirstID != nil || p.LastID != nil):
		h.t.Errorf("GET %s: empty page with first_id %v, last_id %v", path, p.FirstID, p.LastID)
	case n > 0 && (p.FirstID == nil || *p.FirstID != p.Data[0].ID || p.LastID == nil || *p.LastID != p.Data[n-1].ID):
		h.t.Errorf("GET %s: first_id/last_id do not match the page", path)
	}
	return p
}

// pageAll follows after through every page of base (a path with a query) by limit,
// checking that has_more is true exactly when a further page has data.
func (h *harness) pageAll(key, base string, limit int) []string {
	h.t.Helper()
	var ids []string
	after := ""
	for range 1000 {
		path := fmt.Sprintf("%s&limit=%d", base, limit)
		if after != "" {
			path += "&after=" + after
		}
		p := h.page(key, path)
		for _, d := range p.Data {
			ids = append(ids, d.ID)
		}
		if len(p.Data) < limit && p.HasMore {
			h.t.Errorf("GET %s: %d of %d items with has_more", path, len(p.Data), limit)
		}
		if !p.HasMore {
			return ids
		}
		if len(p.Data) == 0 {
			h.t.Fatalf("GET %s: empty page with has_more", path)
		}
		after = p.Data[len(p.Data)-1].ID
	}
	h.t.Fatal("pagination does not end")
	return nil
}

func TestServeListPaginationIsExact(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.start()
	c := h.client(keyA)
	// Inputs and outputs interleave: a purpose filter applied after the limit comes up
	// short.
	var inputs, batches []string
	for range 3 {
		f := upload(t, c, inputLines(2))
		inputs = append(inputs, f.ID)
		b := createBatch(t, c, f.ID, "24h")
		batches = append(batches, b.ID)
		waitBatch(t, c, b.ID, terminal)
	}
	slices.Reverse(inputs)
	slices.Reverse(batches)

	p := h.page(keyA, "/v1/files?purpose=batch&limit=2")
	if len(p.Data) != 2 || !p.HasMore || p.Data[0].ID != inputs[0] || p.Data[1].ID != inputs[1] {
		t.Errorf("first page of purpose=batch by 2: %+v, want %v with has_more", p, inputs[:2])
	}
	for _, limit := range []int{1, 2, 3, 4} {
		if got := h.pageAll(keyA, "/v1/files?purpose=batch", limit); !slices.Equal(got, inputs) {
			t.Errorf("purpose=batch by %d: %v, want %v", limit, got, inputs)
		}
		if got := h.pageAll(keyA, "/v1/batches?order=desc", limit); !slices.Equal(got, batches) {
			t.Errorf("batches by %d: %v, want %v", limit, got, batches)
		}
		asc := slices.Clone(batches)
		slices.Reverse(asc)
		if got := h.pageAll(keyA, "/v1/batches?order=asc", limit); !slices.Equal(got, asc) {
			t.Errorf("batches oldest first by %d: %v, want %v", limit, got, asc)
		}
	}
	all := h.pageAll(keyA, "/v1/files?x=", 2)
	outputs := h.pageAll(keyA, "/v1/files?purpose=batch_output", 2)
	if len(all) != 6 || len(outputs) != 3 {
		t.Errorf("%d files and %d outputs, want 6 and 3", len(all), len(outputs))
	}
	if got := h.pageAll(keyB, "/v1/files?purpose=batch", 1); len(got) != 0 {
		t.Errorf("another key lists %v", got)
	}
}

func TestServeListPaginationUnderConcurrentUploads(t *testing.T) {
	h := newHarness(t, sim.Config{Seed: 1}, 4)
	h.start()
	c := h.client(keyA)
	var before []string
	for range 6 {
		before = append(before, upload(t, c, inputLines(1)).ID)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				upload(t, c, inputLines(1))
			}
		}
	})
	// Oldest first, every file there before paging started comes exactly once, in order.
	got := h.pageAll(keyA, "/v1/files?purpose=batch&order=asc", 2)
	close(stop)
	wg.Wait()
	if len(got) < len(before) || !slices.Equal(got[:len(before)], before) {
		t.Errorf("paging while uploading: %v, want it to start with %v", got, before)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("file %s listed twice", id)
		}
		seen[id] = true
	}
}
