package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
)

// ReservationStore keeps what the budget pools of sluice serve reserved, so that budgets
// hold across a crash. The reservation scenarios run on stores that implement it and are
// skipped on others.
type ReservationStore = service.ReservationStore

var reservationScenarios = []scenario{
	{"ReservationsSettleIntoUnconfirmed", testReservationsSettleIntoUnconfirmed},
}

// reservation is one ceiling Reservations gives.
type reservation struct {
	session, owner string
	period         time.Time
	priorTokens    int64
	priorCost      float64
	tokens         int64
	cost           float64
}

func reservations(t *testing.T, rs ReservationStore, session string) []reservation {
	t.Helper()
	out := []reservation{}
	err := rs.Reservations(t.Context(), session, func(s, o string, p time.Time, pt int64, pc float64, tok int64, c float64) error {
		out = append(out, reservation{s, o, p.UTC(), pt, pc, tok, c})
		return nil
	})
	if err != nil {
		t.Fatalf("reservations: %v", err)
	}
	return out
}

func testReservationsSettleIntoUnconfirmed(t *testing.T, st sluice.Store) {
	rs := implements[ReservationStore](t, st)
	ctx := t.Context()
	period := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if err := rs.SaveReservation(ctx, "s1", "alice", period, 5, 0.5, 100, 1); err != nil {
		t.Fatal(err)
	}
	if err := rs.SaveReservation(ctx, "s1", "alice", period, 5, 0.5, 300, 3); err != nil { // a higher ceiling
		t.Fatal(err)
	}
	if err := rs.SaveReservation(ctx, "s2", "bob", period, 0, 0, 50, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := reservations(t, rs, "s2"), []reservation{{"s1", "alice", period, 5, 0.5, 300, 3}}; !slices.Equal(got, want) {
		t.Errorf("reservations of other sessions: %v, want %v", got, want)
	}
	// fn may write: a starting server settles each ceiling as it reads it.
	err := rs.Reservations(ctx, "s2", func(session, owner string, p time.Time, _ int64, _ float64, _ int64, _ float64) error {
		return rs.SettleReservation(ctx, session, owner, p, 40, 0.4)
	})
	if err != nil {
		t.Fatal(err)
	}
	// A ceiling with nothing lost settles into nothing.
	if err := rs.SettleReservation(ctx, "s2", "bob", period, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := reservations(t, rs, ""); len(got) != 0 {
		t.Errorf("reservations left after settling: %v", got)
	}
	tokens, cost, err := rs.SumUnconfirmed(ctx, "alice", period, period.AddDate(0, 1, 0))
	if err != nil || tokens != 40 || cost != 0.4 {
		t.Errorf("unconfirmed of alice: %d, %v, %v; want 40, 0.4", tokens, cost, err)
	}
	if tokens, cost, err := rs.SumUnconfirmed(ctx, "bob", period, period.AddDate(0, 1, 0)); tokens != 0 || cost != 0 || err != nil {
		t.Errorf("unconfirmed of bob: %d, %v, %v; want none", tokens, cost, err)
	}
	if tokens, _, _ := rs.SumUnconfirmed(ctx, "alice", period.AddDate(0, 1, 0), period.AddDate(0, 2, 0)); tokens != 0 {
		t.Errorf("unconfirmed of the next period: %d", tokens)
	}
	if err := rs.SaveReservation(ctx, "s3", "alice", period, 40, 0.4, 90, 0.9); err != nil {
		t.Fatal(err)
	}
	if err := rs.DeleteReservations(ctx, "s3"); err != nil { // s3 ended cleanly
		t.Fatal(err)
	}
	if got := reservations(t, rs, ""); len(got) != 0 {
		t.Errorf("reservations left after a clean end: %v", got)
	}
}
