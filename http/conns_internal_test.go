package http

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// deadlineRecorder is a ResponseWriter that counts the deadlines set on its connection.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	reads, writes int
	last          time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.reads++
	return nil
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.writes++
	d.last = t
	return nil
}

// TestPacedSetsFewDeadlines: a request read and answered in many small pieces sets its
// deadlines a few times, not on every read and write, and never earlier than the exact
// rule would.
func TestPacedSetsFewDeadlines(t *testing.T) {
	l := Limits{}.withDefaults()
	const pieces = 1000
	var exact time.Time
	h := paced(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := make([]byte, 10)
		for {
			if _, err := r.Body.Read(p); err != nil {
				break
			}
		}
		start := time.Now()
		for range pieces {
			_, _ = io.WriteString(w, "0123456789")
		}
		exact = l.deadline(time.Now(), start, 0, 10)
	}), l)
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(strings.Repeat("x", 10*pieces))))
	if rec.reads > 4 || rec.writes > 4 {
		t.Errorf("%d pieces each way set %d read and %d write deadlines, want a few", pieces, rec.reads, rec.writes)
	}
	if rec.last.Before(exact) {
		t.Errorf("the write deadline %v is earlier than the exact one %v", rec.last, exact)
	}
}
