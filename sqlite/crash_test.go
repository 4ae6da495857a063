package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sqlite"
)

// crashChildEnv, when set, makes the test binary a child process that writes to the
// ledger it names until it is killed.
const crashChildEnv = "SLUICE_SQLITE_CRASH_LEDGER"

// crashBatch is how many lines the child adds per transaction.
const crashBatch = 100

// crashChild works on job "crash" without end, reporting on stdout every transaction it
// has committed: "added N" when lines up to N are in, "done N" when N lines are done.
func crashChild(path string) int {
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Println("error", err)
		return 2
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	job, err := st.Job(ctx, "crash")
	if err != nil {
		return fail(err)
	}
	if err := st.Release(ctx, "crash", ""); err != nil { // the last child's claims
		return fail(err)
	}
	stats, err := st.Stats(ctx, "crash")
	if err != nil {
		return fail(err)
	}
	done := stats.Done
	for next := job.Ingested + 1; ; next += crashBatch {
		if err := st.AddRequests(ctx, "crash", lines(next, next+crashBatch-1)); err != nil {
			return fail(err)
		}
		fmt.Println("added", next+crashBatch-1)
		n, err := work(ctx, st, "crash", "child", crashBatch/2)
		if err != nil {
			return fail(err)
		}
		done += int64(n)
		fmt.Println("done", done)
	}
}

// TestKilledWriterLosesNothing kills a process writing to the ledger at arbitrary moments
// while this one works on another job in the same file, and checks after each kill that
// the file is sound and holds every transaction the child reported committed.
func TestKilledWriterLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	st := open(t, path)
	defer st.Close()
	for _, id := range []string{"crash", "parent"} {
		if err := st.CreateJob(t.Context(), &sluice.Job{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	var added, done int64
	for round := range 3 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var parentErr error
		wg.Go(func() { parentErr = parentWork(t.Context(), st, stop) })
		a, d := killChildAfter(t, path, 5+7*round)
		close(stop)
		wg.Wait()
		if parentErr != nil {
			t.Fatalf("round %d: this process's work on the shared file: %v", round, parentErr)
		}
		added, done = max(added, a), max(done, d)

		job, err := st.Job(t.Context(), "crash")
		if err != nil {
			t.Fatal(err)
		}
		s, err := st.Stats(t.Context(), "crash")
		if err != nil {
			t.Fatal(err)
		}
		if s.Total < added || s.Done < done {
			t.Fatalf("round %d: the ledger has %d lines and %d done; the child had committed %d and %d", round, s.Total, s.Done, added, done)
		}
		if s.Total%crashBatch != 0 || job.Ingested != s.Total {
			t.Fatalf("round %d: %d lines with Ingested %d: a batch was stored in part", round, s.Total, job.Ingested)
		}
		if n := checkAnswers(t, st, "crash"); n != s.Done {
			t.Fatalf("round %d: %d results, %d done", round, n, s.Done)
		}
		t.Logf("round %d: killed after %d lines added, %d done", round, s.Total, s.Done)
	}
	// Finish the job here: nothing was lost or left behind.
	if err := st.Release(t.Context(), "crash", ""); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := work(t.Context(), st, "crash", "parent", 256)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	s, _ := st.Stats(t.Context(), "crash")
	if n := checkAnswers(t, st, "crash"); n != s.Total || s.Done != s.Total {
		t.Errorf("%d results of %d lines, %d done", n, s.Total, s.Done)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	checkIntegrity(t, path)
}

// killChildAfter starts a child writing to the ledger at path, kills it with SIGKILL
// after it reports n commits, and returns what it last reported.
func killChildAfter(t *testing.T, path string, n int) (added, done int64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for seen := 0; sc.Scan(); seen++ {
		kind, num, _ := strings.Cut(sc.Text(), " ")
		v, _ := strconv.ParseInt(num, 10, 64)
		switch kind {
		case "added":
			added = v
		case "done":
			done = v
		default:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child: %s", sc.Text())
		}
		if seen == n {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.Success() {
		t.Fatalf("child ended with %v, want killed", err)
	}
	return added, done
}

// parentWork adds lines to job "parent" and answers them until stop is closed.
func parentWork(ctx context.Context, st *sqlite.Store, stop <-chan struct{}) error {
	job, err := st.Job(ctx, "parent")
	if err != nil {
		return err
	}
	for next := job.Ingested + 1; ; next += 20 {
		select {
		case <-stop:
			return nil
		default:
		}
		if err := st.AddRequests(ctx, "parent", lines(next, next+19)); err != nil {
			return err
		}
		if _, err := work(ctx, st, "parent", "parent", 20); err != nil {
			return err
		}
		time.Sleep(time.Millisecond) // leave the child the write lock now and then
	}
}
