package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
)

// DeleteJob removes a job's every row and leaves other jobs whole; Compact shrinks the file.
func TestDeleteJob(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := json.RawMessage(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`)
	for _, id := range []string{"gone", "kept"} {
		if err := st.CreateJob(ctx, &sluice.Job{ID: id, State: sluice.JobRunning, Input: "in", Options: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		reqs := make([]sluice.NewRequest, 500)
		for i := range reqs {
			reqs[i] = sluice.NewRequest{Line: int64(i + 1), Request: sluice.Request{CustomID: fmt.Sprint(i), Method: "POST", URL: "/v1/chat/completions", Body: body}}
		}
		if err := st.AddRequests(ctx, id, reqs); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	if err := st.DeleteJob(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteJob(ctx, "gone"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("deleting it again: %v, want ErrNotFound", err)
	}
	if _, err := st.Job(ctx, "gone"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("the deleted job: %v, want ErrNotFound", err)
	}
	var left int
	if err := st.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM request) + (SELECT count(*) FROM request_input) + (SELECT count(*) FROM request_output)`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	stats, err := st.Stats(ctx, "kept")
	if err != nil || stats.Total != 500 || left != 1000 {
		t.Fatalf("after the delete: %d rows left, the other job %+v %v; want its 500 requests (1000 rows) only", left, stats, err)
	}
	if err := st.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if after := fileSize(t, path); after > before*2/3 {
		t.Errorf("compacted file %d bytes, was %d: want about half", after, before)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
