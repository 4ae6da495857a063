package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluice-llm/sluice"
)

var jobScenarios = []scenario{
	{"CreateJobAndGetIt", testCreateJobAndGetIt},
	{"CreateJobSetsCreatedAt", testCreateJobSetsCreatedAt},
	{"CreateJobTwiceFails", testCreateJobTwiceFails},
	{"JobNotFound", testJobNotFound},
	{"JobsNewestFirst", testJobsNewestFirst},
	{"UpdateJobRoundTrip", testUpdateJobRoundTrip},
	{"UpdateJobKeepsEveryState", testUpdateJobKeepsEveryState},
}

// created is a creation time the scenarios give jobs, whole seconds so that any store's
// time precision holds it.
var created = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func testCreateJobAndGetIt(t *testing.T, st sluice.Store) {
	want := sluice.Job{
		ID: "job-a", State: sluice.JobInterrupted, CreatedAt: created, UpdatedAt: created.Add(time.Minute),
		Input: "/data/input.jsonl", Fingerprint: "fp-a", Options: json.RawMessage(`{"concurrency":8,"model":"x"}`),
		Ingested: 12, IngestDone: true, Elapsed: 90*time.Second + 250*time.Millisecond, Error: "interrupted",
	}
	job := want
	if err := st.CreateJob(t.Context(), &job); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, getJob(t, st, "job-a")); diff != "" {
		t.Errorf("job read back (-want +got):\n%s", diff)
	}
}

func testCreateJobSetsCreatedAt(t *testing.T, st sluice.Store) {
	before := time.Now()
	newJob(t, st, "job-a")
	after := time.Now()
	got := getJob(t, st, "job-a")
	// Allow a store a coarser clock than Go's.
	if got.CreatedAt.Before(before.Add(-time.Millisecond)) || got.CreatedAt.After(after.Add(time.Millisecond)) {
		t.Errorf("CreatedAt = %v, want between %v and %v", got.CreatedAt, before, after)
	}
}

func testCreateJobTwiceFails(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	again := &sluice.Job{ID: "job-a", State: sluice.JobCompleted, Input: "other.jsonl"}
	if err := st.CreateJob(t.Context(), again); err == nil {
		t.Fatal("creating a job with an id in use succeeded")
	}
	if got := getJob(t, st, "job-a"); got.Input != "input.jsonl" || got.State != sluice.JobRunning {
		t.Errorf("the failed create changed the job: %+v", got)
	}
}

func testJobNotFound(t *testing.T, st sluice.Store) {
	newJob(t, st, "job-a")
	job, err := st.Job(t.Context(), "job-b")
	if !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("Job of a missing id = %+v, %v; want an error wrapping ErrNotFound", job, err)
	}
}

func testJobsNewestFirst(t *testing.T, st sluice.Store) {
	jobs, err := st.Jobs(t.Context(), "")
	if err != nil || len(jobs) != 0 {
		t.Fatalf("Jobs of an empty store = %v, %v; want none", jobs, err)
	}
	for _, j := range []struct {
		id, fingerprint string
		age             time.Duration
	}{{"job-a", "fp-x", 3 * time.Hour}, {"job-b", "fp-y", time.Hour}, {"job-c", "fp-x", 2 * time.Hour}} {
		job := &sluice.Job{ID: j.id, State: sluice.JobRunning, Fingerprint: j.fingerprint, CreatedAt: created.Add(-j.age)}
		if err := st.CreateJob(t.Context(), job); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		fingerprint string
		want        []string
	}{
		{"", []string{"job-b", "job-c", "job-a"}},
		{"fp-x", []string{"job-c", "job-a"}},
		{"fp-y", []string{"job-b"}},
		{"fp-z", []string{}},
	} {
		jobs, err := st.Jobs(t.Context(), tc.fingerprint)
		if err != nil {
			t.Fatalf("Jobs(%q): %v", tc.fingerprint, err)
		}
		ids := []string{}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("Jobs(%q) = %v, want %v", tc.fingerprint, ids, tc.want)
		}
	}
}

func testUpdateJobRoundTrip(t *testing.T, st sluice.Store) {
	job := &sluice.Job{ID: "job-a", State: sluice.JobRunning, CreatedAt: created, UpdatedAt: created,
		Input: "input.jsonl", Fingerprint: "fp-a", Options: json.RawMessage(`{"a":1}`)}
	if err := st.CreateJob(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	want := *job
	want.State, want.Error = sluice.JobAborted, "API key rejected"
	want.Elapsed, want.Ingested, want.IngestDone = 3*time.Minute+125*time.Millisecond, 4200, true
	update := want
	update.Input, update.Fingerprint = "changed.jsonl", "fp-changed" // not saved by UpdateJob
	if err := st.UpdateJob(t.Context(), &update); err != nil {
		t.Fatal(err)
	}
	got := getJob(t, st, "job-a")
	if diff := cmp.Diff(&want, got, cmpopts.IgnoreFields(sluice.Job{}, "UpdatedAt")); diff != "" {
		t.Errorf("job after update (-want +got):\n%s", diff)
	}
	if got.UpdatedAt.Before(created) {
		t.Errorf("UpdatedAt = %v, before the job was created", got.UpdatedAt)
	}
}

// Every job state is saved and read back as itself: commands branch on them (a watch
// leaves a cancelled job alone until asked to resume it).
func testUpdateJobKeepsEveryState(t *testing.T, st sluice.Store) {
	job := newJob(t, st, "job-a")
	for _, state := range []sluice.JobState{sluice.JobInterrupted, sluice.JobCancelled, sluice.JobAborted,
		sluice.JobBudget, sluice.JobFailed, sluice.JobCompleted, sluice.JobRunning} {
		job.State = state
		if err := st.UpdateJob(t.Context(), job); err != nil {
			t.Fatal(err)
		}
		if got := getJob(t, st, "job-a").State; got != state {
			t.Errorf("state %s read back as %s", state, got)
		}
	}
}
