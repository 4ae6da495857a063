package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
)

// ObjectStore keeps the files and batches of sluice serve as JSON documents owned by a
// tenant. The object scenarios run on stores that implement it and are skipped on others.
type ObjectStore = service.ObjectStore

var objectScenarios = []scenario{
	{"ObjectsPageFilteredBeforeTheLimit", testObjectsPageFilteredBeforeTheLimit},
	{"ObjectsBelongToTheirOwner", testObjectsBelongToTheirOwner},
	{"ObjectsWithStatusOfAnyOwner", testObjectsWithStatusOfAnyOwner},
	{"ObjectsPageExactlyWhileAdded", testObjectsPageExactlyWhileAdded},
}

// saveFile saves a file object whose document holds id and purpose.
func saveFile(t *testing.T, ob ObjectStore, id, owner, purpose, status string) {
	t.Helper()
	doc, _ := json.Marshal(map[string]string{"id": id, "purpose": purpose})
	if err := ob.SaveObject(t.Context(), "file", id, owner, status, doc); err != nil {
		t.Fatalf("save %s: %v", id, err)
	}
}

// docIDs returns the "id" of each document.
func docIDs(t *testing.T, docs [][]byte) []string {
	t.Helper()
	out := []string{}
	for _, d := range docs {
		var v struct{ ID string }
		if err := json.Unmarshal(d, &v); err != nil {
			t.Fatalf("document %q: %v", d, err)
		}
		out = append(out, v.ID)
	}
	return out
}

func testObjectsPageFilteredBeforeTheLimit(t *testing.T, st sluice.Store) {
	ob := implements[ObjectStore](t, st)
	// Inputs and outputs interleave; one input is hidden; another owner has one too.
	saveFile(t, ob, "f1", "a", "batch", "")
	saveFile(t, ob, "o1", "a", "batch_output", "")
	saveFile(t, ob, "f2", "a", "batch", "")
	saveFile(t, ob, "o2", "a", "batch_output", "")
	saveFile(t, ob, "f3", "a", "batch", "deleted")
	saveFile(t, ob, "f4", "a", "batch", "")
	saveFile(t, ob, "x1", "b", "batch", "")
	saveFile(t, ob, "f1", "a", "batch", "processed") // a new version keeps its place
	for _, tc := range []struct {
		after, purpose string
		asc            bool
		limit          int
		want           []string
		more           bool
	}{
		{"", "batch", false, 2, []string{"f4", "f2"}, true},
		{"f2", "batch", false, 2, []string{"f1"}, false},
		{"", "batch", true, 2, []string{"f1", "f2"}, true},
		{"f2", "batch", true, 2, []string{"f4"}, false},
		{"", "", false, 10, []string{"f4", "o2", "f2", "o1", "f1"}, false},
		{"", "", true, 5, []string{"f1", "o1", "f2", "o2", "f4"}, false},
		{"o2", "batch_output", false, 1, []string{"o1"}, false},
		{"f4", "", false, 1, []string{"o2"}, true},
		{"f3", "", false, 10, []string{"o2", "f2", "o1", "f1"}, false}, // a hidden object is still a cursor
		{"f1", "", false, 10, []string{}, false},
	} {
		t.Run(fmt.Sprintf("%s/%s/%v/%d", tc.after, tc.purpose, tc.asc, tc.limit), func(t *testing.T) {
			docs, more, err := ob.ListObjects(t.Context(), "file", "a", tc.after, tc.purpose, tc.asc, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := docIDs(t, docs); !slices.Equal(got, tc.want) || more != tc.more {
				t.Errorf("got %v more %v, want %v more %v", got, more, tc.want, tc.more)
			}
		})
	}
	for _, after := range []string{"x1", "nope"} {
		if _, _, err := ob.ListObjects(t.Context(), "file", "a", after, "", false, 1); !errors.Is(err, sluice.ErrNotFound) {
			t.Errorf("after %s (not a's): %v, want ErrNotFound", after, err)
		}
	}
	if _, _, err := ob.ListObjects(t.Context(), "batch", "a", "f1", "", false, 1); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("after a file in the batches: %v, want ErrNotFound", err)
	}
}

func testObjectsBelongToTheirOwner(t *testing.T, st sluice.Store) {
	ob := implements[ObjectStore](t, st)
	ctx := t.Context()
	saveFile(t, ob, "f1", "a", "batch", "")
	saveFile(t, ob, "f1", "b", "user_data", "") // b cannot take a's object, only replace its document
	for _, owner := range []string{"a", ""} {
		doc, err := ob.Object(ctx, "file", "f1", owner)
		if err != nil || !slices.Equal(docIDs(t, [][]byte{doc}), []string{"f1"}) {
			t.Errorf("Object of owner %q: %s, %v", owner, doc, err)
		}
	}
	if _, err := ob.Object(ctx, "file", "f1", "b"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("Object of another owner: %v, want ErrNotFound", err)
	}
	if _, err := ob.Object(ctx, "batch", "f1", ""); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("Object of another kind: %v, want ErrNotFound", err)
	}
	if docs, _, err := ob.ListObjects(ctx, "file", "b", "", "", false, 10); err != nil || len(docs) != 0 {
		t.Errorf("b lists %d objects, %v; want none", len(docs), err)
	}
	// A hidden object is still read by id (the service answers 404 itself), never listed.
	saveFile(t, ob, "f1", "a", "batch", "deleted")
	if _, err := ob.Object(ctx, "file", "f1", "a"); err != nil {
		t.Errorf("Object of a hidden object: %v", err)
	}
	if err := ob.DeleteObject(ctx, "file", "f1", "b"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("delete by another owner: %v, want ErrNotFound", err)
	}
	if err := ob.DeleteObject(ctx, "file", "f1", "a"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := ob.Object(ctx, "file", "f1", ""); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("Object after delete: %v, want ErrNotFound", err)
	}
	if err := ob.DeleteObject(ctx, "file", "f1", "a"); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("delete twice: %v, want ErrNotFound", err)
	}
}

func testObjectsWithStatusOfAnyOwner(t *testing.T, st sluice.Store) {
	ob := implements[ObjectStore](t, st)
	ctx := t.Context()
	for i, o := range []struct{ id, owner, status string }{
		{"b1", "a", "in_progress"}, {"b2", "b", "completed"}, {"b3", "b", "validating"},
		{"b4", "a", "in_progress"}, {"b5", "c", "cancelled"},
	} {
		doc := fmt.Appendf(nil, `{"id":%q,"n":%d}`, o.id, i)
		if err := ob.SaveObject(ctx, "batch", o.id, o.owner, o.status, doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := ob.SaveObject(ctx, "batch", "b4", "a", "finalizing", []byte(`{"id":"b4","n":5}`)); err != nil {
		t.Fatal(err)
	}
	saveFile(t, ob, "f1", "a", "batch", "in_progress") // another kind
	docs, err := ob.ObjectsWithStatus(ctx, "batch", "in_progress", "validating", "finalizing")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := docIDs(t, docs), []string{"b1", "b3", "b4"}; !slices.Equal(got, want) {
		t.Errorf("active batches %v, want %v, oldest first", got, want)
	}
	if len(docs) == 3 && string(docs[2]) != `{"id":"b4","n":5}` {
		t.Errorf("b4 = %s, want its last version", docs[2])
	}
	if docs, err := ob.ObjectsWithStatus(ctx, "batch"); err != nil || len(docs) != 0 {
		t.Errorf("no statuses: %d documents, %v", len(docs), err)
	}
}

// testObjectsPageExactlyWhileAdded walks a's files oldest first, a page of 3 at a time,
// while writers add files of a's: every file appears once, each writer's in the order it
// saved them. A store whose new objects could commit out of their listing order would let
// a page pass a file that commits later, which the walk then never sees.
func testObjectsPageExactlyWhileAdded(t *testing.T, st sluice.Store) {
	ob := implements[ObjectStore](t, st)
	const writers, each = 4, 25
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		finished bool
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				doc, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("w%d-%02d", w, i), "purpose": "batch"})
				if err := ob.SaveObject(t.Context(), "file", fmt.Sprintf("w%d-%02d", w, i), "a", "", doc); err != nil {
					t.Errorf("save: %v", err)
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		mu.Lock()
		finished = true
		mu.Unlock()
	}()
	var seen []string
	after := ""
	for {
		mu.Lock()
		last := finished // every file is committed when the page below is read
		mu.Unlock()
		docs, more, err := ob.ListObjects(t.Context(), "file", "a", after, "batch", true, 3)
		if err != nil {
			t.Fatal(err)
		}
		ids := docIDs(t, docs)
		seen = append(seen, ids...)
		if len(ids) > 0 {
			after = ids[len(ids)-1]
		}
		if !more && last {
			break
		}
	}
	wg.Wait()
	if len(seen) != writers*each {
		t.Errorf("the walk saw %d files, want %d", len(seen), writers*each)
	}
	next := map[string]int{}
	for _, id := range seen {
		var w, i int
		if _, err := fmt.Sscanf(id, "w%d-%d", &w, &i); err != nil {
			t.Fatalf("id %s: %v", id, err)
		}
		if want := next[fmt.Sprint(w)]; i != want {
			t.Errorf("file %s after writer %d's file %d: missed or out of order", id, w, want-1)
		}
		next[fmt.Sprint(w)] = i + 1
	}
}
