package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
)

// Read-only commands on a store that does not exist say so and create nothing.
func TestReadingCreatesNoStore(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "sluce.db")
	for _, args := range [][]string{
		{"jobs"}, {"show", "job_x"}, {"export", "job_x", "-o", filepath.Join(dir, "o.jsonl")},
		{"batch", "status", "job_x"}, {"jobs", "rm", "job_x"}, {"jobs", "prune", "--older-than", "1d"},
	} {
		res := runCLI(t, nil, append(args, "--store", typo)...)
		if res.code != exitUsage || !strings.Contains(res.stderr, "no store at "+typo) {
			t.Errorf("%v: exit %d: %s", args, res.code, res.stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("read-only commands created %v", entries)
	}
}

// A job left running by a process that is gone shows as interrupted; jobs rm deletes it
// and says how much it freed; prune deletes the old ones only.
func TestJobsRmAndPrune(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "s.db")
	in := writeRequests(t, dir, 50)
	for i := range 2 {
		res := runCLI(t, nil, "run", in, "--sim", "--store", store, "--progress", "none", "--new", "-o", filepath.Join(dir, "out"+string(rune('a'+i))+".jsonl"))
		if res.code != exitOK {
			t.Fatalf("run: exit %d: %s", res.code, res.stderr)
		}
	}
	// A third job, left "running" as kill -9 leaves it.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateJob(ctx, &sluice.Job{ID: "job_killed", State: sluice.JobRunning, Input: in, Options: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var rows []jobSummary
	res := runCLI(t, nil, "jobs", "--store", store, "--json")
	if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("jobs: %v %s %s", err, res.stdout, res.stderr)
	}
	if rows[0].Job != "job_killed" || rows[0].State != string(sluice.JobInterrupted) {
		t.Errorf("the killed job shows as %+v, want interrupted", rows[0])
	}
	// Held by a live process, it shows as running and cannot be deleted.
	unlock, err := lockJob(jobLockPath(store, "job_killed"))
	if err != nil {
		t.Fatal(err)
	}
	res = runCLI(t, nil, "jobs", "--store", store, "--json")
	if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil || rows[0].State != string(sluice.JobRunning) {
		t.Errorf("a held job shows as %+v (%v), want running", rows[0], err)
	}
	res = runCLI(t, nil, "jobs", "rm", "job_killed", "--store", store)
	if res.code != exitUsage || !strings.Contains(res.stderr, "running in another process") {
		t.Errorf("rm of a held job: exit %d: %s", res.code, res.stderr)
	}
	unlock()

	res = runCLI(t, nil, "jobs", "rm", rows[1].Job, "--store", store)
	if res.code != exitOK || !strings.Contains(res.stdout, "1 jobs deleted") || !strings.Contains(res.stdout, "freed") {
		t.Fatalf("rm: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if res := runCLI(t, nil, "show", rows[1].Job, "--store", store); res.code != exitUsage {
		t.Errorf("show of a deleted job: exit %d", res.code)
	}
	res = runCLI(t, nil, "jobs", "prune", "--older-than", "1d", "--store", store)
	if res.code != exitOK || !strings.Contains(res.stdout, "no job older than 1d") {
		t.Errorf("prune of new jobs: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, nil, "jobs", "prune", "--older-than", "1ns", "--store", store)
	if res.code != exitOK || !strings.Contains(res.stdout, "2 jobs deleted") {
		t.Errorf("prune: exit %d: %s %s", res.code, res.stdout, res.stderr)
	}
	if res := runCLI(t, nil, "jobs", "prune", "--older-than", "soon", "--store", store); res.code != exitUsage {
		t.Errorf("prune --older-than soon: exit %d", res.code)
	}
}
