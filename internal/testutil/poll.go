package testutil

import (
	"testing"
	"time"
)

// Poll calls get every interval until done holds of what it returns, and returns that.
// It is for what can only be polled, as a client polls a batch: the Batch API has no
// event to wait on. An error from get, or timeout passing first, ends the test, with the
// last value got.
func Poll[T any](t testing.TB, timeout, interval time.Duration, get func() (T, error), done func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, err := get()
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if done(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("poll: not done after %s; last: %+v", timeout, v)
		}
		time.Sleep(interval) // polling is the protocol
	}
}
