package main

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/sluice-llm/sluice/internal/pgtest"
	"github.com/sluice-llm/sluice/sim"
)

// TestServeRestartTakesBackAtOnce kills a serve process mid-batch and starts another on
// the same store on the same machine: it takes the lock the first held, so it knows the
// first is gone, and resumes the batch at once though the lease TTL is 10 minutes. On
// a SQLite file (the lock beside it), and on PostgreSQL (the lock in the data directory
// of $XDG_DATA_HOME) when SLUICE_TEST_POSTGRES_URL is set.
func TestServeRestartTakesBackAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	t.Run("sqlite", func(t *testing.T) {
		testServeRestart(t, filepath.Join(t.TempDir(), "s.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		u, _ := pgtest.SchemaURL(t)
		t.Setenv("XDG_DATA_HOME", t.TempDir())
		testServeRestart(t, u, "--files-dir", t.TempDir())
	})
}

func testServeRestart(t *testing.T, store string, extra ...string) {
	const n = 400
	simSrv := sim.New(sim.Config{Seed: 3, TTFT: 20 * time.Millisecond})
	defer simSrv.Close()
	up := httptest.NewServer(simSrv)
	defer up.Close()
	input := writeRequests(t, t.TempDir(), n)
	args := append([]string{"--store", store, "--base-url", up.URL + "/v1", "--concurrency", "8", "--lease-ttl", "10m"}, extra...)

	first := startServeProcess(t, args...)
	b := submitMidway(t, first.client(), input, n)
	first.kill(t)

	second := startServeProcess(t, args...)
	c := second.client()
	done := pollBatch(t, c, b.ID, batchFinal)
	if done.Status != openai.BatchStatusCompleted || done.RequestCounts.Completed != n {
		t.Fatalf("resumed batch: %s, %+v\n%s", done.Status, done.RequestCounts, second.log.String())
	}
	if !strings.Contains(second.log.String(), "resuming batch") {
		t.Errorf("the second server did not say it resumed the batch:\n%s", second.log.String())
	}
	checkOutput(t, fileContent(t, c, done.OutputFileID), n)
}
