package sqlite_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
)

func TestListObjectsFiltersBeforeTheLimit(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer st.Close()
	ctx := t.Context()
	save := func(id, owner, purpose, status string) {
		t.Helper()
		doc, _ := json.Marshal(map[string]string{"id": id, "purpose": purpose})
		if err := st.SaveObject(ctx, "file", id, owner, status, doc); err != nil {
			t.Fatal(err)
		}
	}
	// Inputs and outputs interleave; one input is hidden; another owner has one too.
	save("f1", "a", "batch", "")
	save("o1", "a", "batch_output", "")
	save("f2", "a", "batch", "")
	save("o2", "a", "batch_output", "")
	save("f3", "a", "batch", "deleted")
	save("f4", "a", "batch", "")
	save("x1", "b", "batch", "")
	ids := func(docs [][]byte) []string {
		var out []string
		for _, d := range docs {
			var v struct{ ID string }
			if err := json.Unmarshal(d, &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v.ID)
		}
		return out
	}
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
		{"o2", "batch_output", false, 1, []string{"o1"}, false},
		{"f4", "", false, 1, []string{"o2"}, true},
	} {
		t.Run(fmt.Sprintf("%s/%s/%v/%d", tc.after, tc.purpose, tc.asc, tc.limit), func(t *testing.T) {
			docs, more, err := st.ListObjects(ctx, "file", "a", tc.after, tc.purpose, tc.asc, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(docs); !slices.Equal(got, tc.want) || more != tc.more {
				t.Errorf("got %v more %v, want %v more %v", got, more, tc.want, tc.more)
			}
		})
	}
	if _, _, err := st.ListObjects(ctx, "file", "a", "x1", "", false, 1); !errors.Is(err, sluice.ErrNotFound) {
		t.Errorf("after another owner's object: %v, want ErrNotFound", err)
	}
}

func TestReservationsSettleIntoUnconfirmed(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer st.Close()
	ctx := t.Context()
	period := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if err := st.SaveReservation(ctx, "s1", "alice", period, 5, 0.5, 100, 1); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveReservation(ctx, "s1", "alice", period, 5, 0.5, 300, 3); err != nil { // a higher ceiling
		t.Fatal(err)
	}
	if err := st.SaveReservation(ctx, "s2", "bob", period, 0, 0, 50, 0); err != nil {
		t.Fatal(err)
	}
	type row struct {
		session, owner string
		prior, tokens  int64
	}
	var got []row
	err := st.Reservations(ctx, "s2", func(session, owner string, p time.Time, pt int64, _ float64, tokens int64, _ float64) error {
		if !p.Equal(period) {
			t.Errorf("period %v, want %v", p, period)
		}
		got = append(got, row{session, owner, pt, tokens})
		return st.SettleReservation(ctx, session, owner, p, 40, 0.4) // fn may write
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []row{{"s1", "alice", 5, 300}}; !slices.Equal(got, want) {
		t.Errorf("reservations of other sessions: %v, want %v", got, want)
	}
	tokens, cost, err := st.SumUnconfirmed(ctx, "alice", period, period.AddDate(0, 1, 0))
	if err != nil || tokens != 40 || cost != 0.4 {
		t.Errorf("unconfirmed of alice: %d, %v, %v; want 40, 0.4", tokens, cost, err)
	}
	if tokens, _, _ := st.SumUnconfirmed(ctx, "alice", period.AddDate(0, 1, 0), period.AddDate(0, 2, 0)); tokens != 0 {
		t.Errorf("unconfirmed of the next period: %d", tokens)
	}
	if err := st.DeleteReservations(ctx, "s2"); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := st.Reservations(ctx, "", func(string, string, time.Time, int64, float64, int64, float64) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("%d reservations left, %v; want none", n, err)
	}
}
