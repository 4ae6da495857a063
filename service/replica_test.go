package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/pgtest"
	"github.com/sluice-llm/sluice/internal/testutil"
	sluiceopenai "github.com/sluice-llm/sluice/openai"
	"github.com/sluice-llm/sluice/postgres"
	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/sqlite"
)

// Replica tests run two Services over one store, as two sluice serve processes behind a
// load balancer would be: each with its own store connection and engine, sharing the
// files directory, one simulator and one clock the test drives.

const (
	replicaTTL  = 30 * time.Second
	replicaTick = replicaTTL / 3 // a keeper's timer
	replicaConc = 4              // each replica's engine concurrency
	replicaN    = 40             // requests of the test batch
)

// gatedTransport counts the requests sent upstream by their prompt, and holds them until
// the gate opens.
type gatedTransport struct {
	next    http.RoundTripper
	gate    chan struct{}
	opened  sync.Once
	arrived chan struct{} // one per request that reached the gate
	hold    string        // the prompt the gate holds; "": all

	mu     sync.Mutex
	sent   map[string]int // by the request's prompt, "hi N"
	sentBy map[string]int // by the replica that sent it (replicaHeader)
}

// replicaHeader names the replica that sends a request, for the counts of gatedTransport.
const replicaHeader = "X-Test-Replica"

// namedTransport marks the requests of one replica with its name, and sends nothing once
// the replica is dead: what it claimed and had not sent dies with it.
type namedTransport struct {
	next http.RoundTripper
	name string
	dead *atomic.Bool
}

func (n namedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if n.dead.Load() {
		return nil, errDead
	}
	req = req.Clone(req.Context())
	req.Header.Set(replicaHeader, n.name)
	return n.next.RoundTrip(req)
}

// sentBy returns how many requests replica name sent.
func (g *gatedTransport) sentByReplica(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sentBy[name]
}

func (g *gatedTransport) open() { g.opened.Do(func() { close(g.gate) }) }

func (g *gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var b struct{ Messages []struct{ Content string } }
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("test transport: body %s: %w", body, err)
	}
	if len(b.Messages) == 0 {
		return nil, fmt.Errorf("test transport: body %s has no message", body)
	}
	if g.hold == "" || g.hold == b.Messages[0].Content {
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		select {
		case <-g.gate:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	g.mu.Lock()
	g.sent[b.Messages[0].Content]++
	g.sentBy[req.Header.Get(replicaHeader)]++
	g.mu.Unlock()
	return g.next.RoundTrip(req)
}

// sends returns how many requests were sent, and how many prompts were sent more than
// once or never.
func (g *gatedTransport) sends(n int) (total, twice, never int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range n {
		c := g.sent[fmt.Sprintf("hi %d", i)]
		total += c
		if c > 1 {
			twice++
		}
		if c == 0 {
			never++
		}
	}
	return total, twice, never
}

// errDead is what a killed replica's writes and sends get.
var errDead = errors.New("the replica is dead")

// deadStore is a replica's connection to the store that stops taking writes once the
// replica is "killed": what it had not written by then is lost, its leases are neither
// renewed nor released, as with SIGKILL.
type deadStore struct {
	service.Store
	dead   *atomic.Bool
	paused *atomic.Bool // when not nil and set, lease renewals fail
	broken *atomic.Bool // when not nil and set, reading reservations fails
	// before, when not nil, runs before each SaveObject ("save") and Object ("read") is
	// passed on: to interleave another replica's call at that point.
	before func(op, kind string)
}

func (d deadStore) Reservations(ctx context.Context, session string,
	fn func(session, tenant string, period time.Time, priorTokens int64, priorCost float64, tokens int64, cost float64) error) error {
	if d.broken != nil && d.broken.Load() {
		return errors.New("reservations are unreadable")
	}
	return d.Store.Reservations(ctx, session, fn)
}

func (d deadStore) check() error {
	if d.dead.Load() {
		return errDead
	}
	return nil
}

func (d deadStore) Claim(ctx context.Context, p sluice.ClaimParams) ([]sluice.Item, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.Store.Claim(ctx, p)
}

func (d deadStore) Complete(ctx context.Context, id, owner string, outcomes []sluice.Outcome) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.Complete(ctx, id, owner, outcomes)
}

func (d deadStore) Renew(ctx context.Context, p sluice.RenewParams) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.Renew(ctx, p)
}

func (d deadStore) Release(ctx context.Context, id, owner string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.Release(ctx, id, owner)
}

func (d deadStore) SaveObject(ctx context.Context, kind, id, owner, status string, doc []byte) error {
	if err := d.check(); err != nil {
		return err
	}
	if d.before != nil {
		d.before("save", kind)
	}
	return d.Store.SaveObject(ctx, kind, id, owner, status, doc)
}

func (d deadStore) Object(ctx context.Context, kind, id, tenant string) ([]byte, error) {
	if d.before != nil {
		d.before("read", kind)
	}
	return d.Store.Object(ctx, kind, id, tenant)
}

func (d deadStore) TakeLease(ctx context.Context, kind, id, holder string, now, until time.Time) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	if d.paused != nil && d.paused.Load() {
		return false, errors.New("the replica is paused")
	}
	return d.Store.TakeLease(ctx, kind, id, holder, now, until)
}

func (d deadStore) ReleaseLease(ctx context.Context, kind, id, holder string) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.Store.ReleaseLease(ctx, kind, id, holder)
}

// replicas is a store, a files directory, a simulator behind a gate and a clock, shared
// by the replicas a test starts.
type replicas struct {
	t     *testing.T
	open  func() service.Store // a new connection to the shared store
	files string
	clock *testutil.Clock
	up    *gatedTransport
	keys  []service.Key // client keys besides sk-alice's (which then has none)
}

// forEachStore runs test on replicas over a SQLite file, and over a PostgreSQL schema
// when SLUICE_TEST_POSTGRES_URL is set.
func forEachStore(t *testing.T, test func(t *testing.T, h *replicas)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sluice.db")
		test(t, newReplicas(t, func() (service.Store, error) { return sqlite.Open(context.Background(), path) }))
	})
	t.Run("postgres", func(t *testing.T) {
		u, _ := pgtest.SchemaURL(t)
		test(t, newReplicas(t, func() (service.Store, error) { return postgres.Open(context.Background(), u) }))
	})
}

func newReplicas(t *testing.T, open func() (service.Store, error)) *replicas {
	// A batch takes a while (replicaN/replicaConc × 10 ms), so that a run stopped by a
	// cancel has surely not sent it all.
	s := sim.New(sim.Config{Seed: 1, TTFT: 10 * time.Millisecond})
	t.Cleanup(s.Close)
	h := &replicas{t: t, files: filepath.Join(t.TempDir(), "files"), clock: testutil.NewClock(),
		up: &gatedTransport{next: s.Transport(), gate: make(chan struct{}),
			arrived: make(chan struct{}, 1000), sent: map[string]int{}, sentBy: map[string]int{}}}
	h.open = func() service.Store {
		st, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	return h
}

// start starts a replica; writes to the store fail once dead (when not nil) is set.
func (h *replicas) start(dead *atomic.Bool) *service.Service {
	return h.startWith(deadStore{dead: dead}, "")
}

// startWith starts a replica named name (in the sends the gate counts by replica) over
// faults' flags (its Store is set here): it dies when dead is set, its lease renewals
// fail while paused is set (as when its process is stopped), its reservations cannot be
// read while broken is set.
func (h *replicas) startWith(faults deadStore, name string) *service.Service {
	t := h.t
	if faults.dead == nil {
		faults.dead = new(atomic.Bool)
	}
	dead := faults.dead
	faults.Store = h.open()
	var st service.Store = faults
	up, err := sluiceopenai.New(sluiceopenai.Config{BaseURL: "http://sim.sluice.invalid/v1",
		HTTPClient: &http.Client{Transport: namedTransport{next: h.up, name: name, dead: dead}}})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := sluice.New(st, up, sluice.Config{Concurrency: replicaConc})
	if err != nil {
		t.Fatal(err)
	}
	cfg := service.Config{Store: st, FilesDir: h.files,
		Routes: []service.Route{{Name: "sim", Engine: eng}}, Keys: h.keys,
		Clock: h.clock, LeaseTTL: replicaTTL, Logger: slog.New(slog.NewTextHandler(testLog{t}, nil))}
	if len(h.keys) == 0 {
		cfg.KeyHashes = []string{service.HashKey("sk-alice")}
	}
	svc, err := service.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.up.open() // a closing replica drains what it sent
		if err := svc.Close(context.Background()); err != nil && !errors.Is(err, errDead) {
			t.Error(err)
		}
	})
	return svc
}

// createBatch creates a batch of replicaN requests on svc and waits until the replica
// running it has sent n of them to the gate.
func (h *replicas) createBatch(svc *service.Service, n int) (tenant, id string) {
	t := h.t
	ctx := context.Background()
	tenant, _, _ = svc.Authenticate("sk-alice")
	f, err := svc.CreateFile(ctx, tenant, sluice.PurposeBatch, "in.jsonl", strings.NewReader(input(replicaN)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateBatch(ctx, tenant, service.CreateBatchParams{InputFileID: f.ID,
		Endpoint: "/v1/chat/completions", CompletionWindow: service.CompletionWindow})
	if err != nil {
		t.Fatal(err)
	}
	h.awaitArrivals(n)
	return tenant, b.ID
}

// awaitArrivals waits until n more requests have reached the gate.
func (h *replicas) awaitArrivals(n int) {
	for range n {
		select {
		case <-h.up.arrived:
		case <-time.After(30 * time.Second): // a failure, not a wait
			h.t.Fatal("no request reached the upstream")
		}
	}
}

// tick moves the clock on by d once the keepers of n replicas wait on it.
func (h *replicas) tick(n int, d time.Duration) {
	h.clock.WaitTimers(h.t, replicaTick, n)
	h.clock.Advance(d)
}

// outputIDs returns the custom_ids of the batch's output file, in order.
func outputIDs(t *testing.T, svc *service.Service, tenant string, b *sluice.Batch) []string {
	t.Helper()
	if b.OutputFileID == nil {
		t.Fatalf("batch %s has no output file", b.Status)
	}
	_, rc, err := svc.FileContent(context.Background(), tenant, *b.OutputFileID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for line := range strings.Lines(string(data)) {
		var v struct {
			CustomID string `json:"custom_id"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		ids = append(ids, v.CustomID)
	}
	return ids
}

// checkExact fails unless ids holds each of want custom_ids r0, r1... exactly once.
func checkExact(t *testing.T, ids []string, want int) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	for i := range want {
		if c := seen[fmt.Sprintf("r%d", i)]; c != 1 {
			t.Errorf("custom_id r%d is in the output %d times", i, c)
		}
	}
	if len(ids) != want {
		t.Errorf("output has %d lines, want %d", len(ids), want)
	}
}

// TestReplicaStartedMidBatch: a replica started while another runs a batch leaves the
// batch alone while the other renews its lease: every request is sent once.
func TestReplicaStartedMidBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *replicas) {
		a := h.start(nil)
		tenant, id := h.createBatch(a, replicaConc)
		b := h.start(nil)
		for range 4 { // longer than a lease: A renews it, B looks and leaves it
			h.tick(2, replicaTick)
		}
		h.up.open()
		got := wait(t, b, tenant, id) // polled at the replica not running it
		if got.Status != sluice.BatchCompleted {
			t.Fatalf("batch %s, counts %+v", got.Status, got.RequestCounts)
		}
		if total, twice, never := h.up.sends(replicaN); total != replicaN || twice != 0 || never != 0 {
			t.Errorf("%d requests sent for %d custom_ids: %d sent twice, %d never", total, replicaN, twice, never)
		}
		checkExact(t, outputIDs(t, b, tenant, got), replicaN)
	})
}

// TestReplicaTakesOverAfterKill: a replica that dies mid-batch without releasing its
// lease has its batch taken by another once the lease expires; the output is exact and
// what the dead one had in flight is sent again, no more.
func TestReplicaTakesOverAfterKill(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *replicas) {
		var dead atomic.Bool
		a := h.start(&dead)
		b := h.start(nil)
		tenant, id := h.createBatch(a, replicaConc)
		dead.Store(true) // A's requests in flight are answered, and the answers lost
		h.up.open()
		h.tick(2, replicaTick) // A's lease is still live: B leaves the batch
		h.tick(2, replicaTTL)  // it has expired: B takes it
		got := wait(t, b, tenant, id)
		if got.Status != sluice.BatchCompleted {
			t.Fatalf("batch %s, counts %+v", got.Status, got.RequestCounts)
		}
		total, twice, never := h.up.sends(replicaN)
		if never != 0 || total-replicaN > replicaConc {
			t.Errorf("%d requests sent for %d custom_ids (%d never): more re-sent than the dead replica's concurrency %d",
				total, replicaN, never, replicaConc)
		}
		t.Logf("re-sent after the kill: %d (%d custom_ids twice)", total-replicaN, twice)
		checkExact(t, outputIDs(t, b, tenant, got), replicaN)
	})
}

// TestCancelThroughAnotherReplica: a cancel that reaches a replica not running the batch
// is stored, and the replica running it stops the run on its next tick; the batch ends
// cancelled with what finished.
func TestCancelThroughAnotherReplica(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *replicas) {
		a := h.start(nil)
		tenant, id := h.createBatch(a, replicaConc)
		b := h.start(nil)
		c, err := b.CancelBatch(context.Background(), tenant, id)
		if err != nil || c.Status != sluice.BatchCancelling {
			t.Fatalf("cancel at B: %v, %v", c, err)
		}
		h.tick(2, replicaTick) // A reads the cancel
		h.clock.WaitTimers(t, replicaTick, 2)
		h.up.open()
		got := wait(t, b, tenant, id)
		if got.Status != sluice.BatchCancelled {
			t.Fatalf("batch %s, counts %+v", got.Status, got.RequestCounts)
		}
		total, twice, _ := h.up.sends(replicaN)
		if total >= replicaN || twice != 0 {
			t.Errorf("the cancelled batch sent %d requests of %d (%d twice)", total, replicaN, twice)
		}
		ids := outputIDs(t, b, tenant, got)
		if int64(len(ids)) != got.RequestCounts.Completed || len(ids) != total {
			t.Errorf("output has %d lines, %d completed, %d sent", len(ids), got.RequestCounts.Completed, total)
		}
	})
}

// TestReplicaPausedPastItsLease: a replica paused past its lease (its renewals fail)
// finds the batch taken by another when it comes back, and stops its run there: it sends
// nothing more, and the output is exact.
func TestReplicaPausedPastItsLease(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *replicas) {
		var paused atomic.Bool
		a := h.startWith(deadStore{paused: &paused}, "a")
		b := h.startWith(deadStore{}, "b")
		tenant, id := h.createBatch(a, replicaConc) // A's requests wait at the gate
		paused.Store(true)
		h.tick(2, replicaTick)
		h.tick(2, replicaTTL)        // A's lease expired: B takes the batch
		h.awaitArrivals(replicaConc) // B sends what A had in flight again
		paused.Store(false)
		h.tick(2, replicaTick) // A finds its lease taken and stops its run
		h.clock.WaitTimers(t, replicaTick, 2)
		h.up.open()
		got := wait(t, b, tenant, id)
		if got.Status != sluice.BatchCompleted {
			t.Fatalf("batch %s, counts %+v", got.Status, got.RequestCounts)
		}
		checkExact(t, outputIDs(t, b, tenant, got), replicaN)
		if n := h.up.sentByReplica("a"); n > replicaConc {
			t.Errorf("A sent %d requests, more than it had in flight when it lost its lease (%d)", n, replicaConc)
		}
		if total, _, never := h.up.sends(replicaN); never != 0 || total-replicaN > replicaConc {
			t.Errorf("%d requests sent for %d custom_ids (%d never)", total, replicaN, never)
		}
	})
}

// TestReplicaAdoptsDespiteABudgetError: a replica whose settling of budget reservations
// fails on a tick still adopts the batches of a dead one.
func TestReplicaAdoptsDespiteABudgetError(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *replicas) {
		var dead, broken atomic.Bool
		a := h.start(&dead)
		b := h.startWith(deadStore{broken: &broken}, "b")
		tenant, id := h.createBatch(a, replicaConc)
		dead.Store(true)
		broken.Store(true)
		h.up.open()
		h.tick(2, replicaTick)
		h.tick(2, replicaTTL)
		if got := wait(t, b, tenant, id); got.Status != sluice.BatchCompleted {
			t.Fatalf("batch %s, counts %+v", got.Status, got.RequestCounts)
		}
	})
}

// TestReplicaShowsProgressOfAnother: the replica running a batch stores its progress
// every UsageInterval, and a client polling another replica sees it.
func TestReplicaShowsProgressOfAnother(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *replicas) {
		h.up.hold = fmt.Sprintf("hi %d", replicaN-1) // all but the last are answered
		a := h.start(nil)
		tenant, id := h.createBatch(a, 1)
		b := h.start(nil)
		ctx := context.Background()
		testutil.Poll(t, 30*time.Second, 5*time.Millisecond, func() (*sluice.Batch, error) { return a.Batch(ctx, tenant, id) },
			func(b *sluice.Batch) bool { return b.RequestCounts.Completed == replicaN-1 })
		h.clock.WaitTimers(t, service.DefaultUsageInterval, 1)
		h.clock.Advance(service.DefaultUsageInterval)
		got := testutil.Poll(t, 30*time.Second, 5*time.Millisecond, func() (*sluice.Batch, error) { return b.Batch(ctx, tenant, id) },
			func(b *sluice.Batch) bool { return b.RequestCounts.Completed == replicaN-1 })
		if got.Status != sluice.BatchInProgress {
			t.Errorf("batch %s at B, want in_progress", got.Status)
		}
	})
}

// TestReplicaBudgetsOfLiveAndDead: a replica settles the budget reservations of
// servers that died, once their session lease expired, never those of a live replica,
// whose requests in flight would count twice against the key's budget.
func TestReplicaBudgetsOfLiveAndDead(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *replicas) {
		h.keys = []service.Key{{Name: "alice", Hash: service.HashKey("sk-alice"),
			Budget: service.KeyBudget{MaxTokens: 1_000_000, Period: service.PeriodDaily}}}
		var dead atomic.Bool
		a := h.start(&dead)
		tenant, id := h.createBatch(a, replicaConc) // A's pool has reserved for what it sent
		b := h.start(nil)
		unconfirmed := func() int64 {
			u, err := b.Usage(context.Background(), tenant)
			if err != nil {
				t.Fatal(err)
			}
			return u.Unconfirmed.Tokens
		}
		if n := unconfirmed(); n != 0 {
			t.Errorf("B counts %d tokens of live A's reservations as unconfirmed spending", n)
		}
		dead.Store(true) // what A had in flight is answered, billed, and lost
		h.up.open()
		h.tick(2, replicaTick)
		if n := unconfirmed(); n != 0 {
			t.Errorf("B counts %d tokens of A's reservations as unconfirmed before A's lease expired", n)
		}
		h.tick(2, replicaTTL)
		wait(t, b, tenant, id)
		if n := unconfirmed(); n == 0 {
			t.Error("B did not count what dead A had in flight as unconfirmed spending")
		}
	})
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }

// TestDeleteInputWhileAnotherReplicaStartsBatch: a client deletes a file at one replica
// while another starts a batch on it. Whatever the order, the batch either is refused
// (the file is gone) or runs to the end on its input: never a batch that fails because
// the deletion pulled its input from under it. Before the fix, the two replicas each
// checked under a lock of their own process only: B saw no batch reading the file and
// removed it between A's check of the file and A's save of the batch.
func TestDeleteInputWhileAnotherReplicaStartsBatch(t *testing.T) {
	for _, when := range []string{"before the batch is saved", "between the save and the look at its input", "after the batch started"} {
		t.Run(when, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, h *replicas) {
				ctx := context.Background()
				b := h.start(nil)
				tenant, _, _ := b.Authenticate("sk-alice")
				f, err := b.CreateFile(ctx, tenant, sluice.PurposeBatch, "in.jsonl", strings.NewReader(input(replicaN)))
				if err != nil {
					t.Fatal(err)
				}
				var once sync.Once
				deleteAtB := func() {
					once.Do(func() {
						if err := b.DeleteFile(ctx, tenant, f.ID); err != nil {
							t.Errorf("delete at B: %v", err)
						}
					})
				}
				var saves atomic.Int32
				a := h.startWith(deadStore{before: func(op, kind string) {
					switch {
					case op == "save" && kind == "batch" && saves.Add(1) == 1 && when == "before the batch is saved":
						deleteAtB()
					case op == "save" && kind == "batch" && saves.Load() == 2 && when == "after the batch started":
						deleteAtB()
					case op == "read" && kind == "file" && saves.Load() == 1 && when == "between the save and the look at its input":
						deleteAtB()
					}
				}}, "a")
				h.up.open()
				created, err := a.CreateBatch(ctx, tenant, service.CreateBatchParams{InputFileID: f.ID,
					Endpoint: "/v1/chat/completions", CompletionWindow: service.CompletionWindow})
				deleteAtB() // when the batch was not saved again
				var se *service.Error
				if err != nil {
					if !asError(err, &se) || se.Code != service.ENOTFOUND {
						t.Fatalf("create batch: %v, want ENOTFOUND or a batch", err)
					}
					if _, err := b.File(ctx, tenant, f.ID); err == nil {
						t.Error("the deleted file is still listed")
					}
					if left, _ := filepath.Glob(filepath.Join(h.files, "*", "*")); len(left) > 0 {
						t.Errorf("the deleted file's content is left: %v", left)
					}
					t.Log("the batch was refused")
					return
				}
				got := wait(t, a, tenant, created.ID)
				if got.Status != sluice.BatchCompleted {
					t.Fatalf("batch %s, counts %+v, errors %v", got.Status, got.RequestCounts, got.Errors)
				}
				checkExact(t, outputIDs(t, a, tenant, got), replicaN)
				t.Log("the batch ran")
			})
		})
	}
}
