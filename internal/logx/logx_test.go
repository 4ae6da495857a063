package logx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/internal/logx"
)

// clock is a settable time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newLogger(burst int, interval time.Duration) (*slog.Logger, *logx.Limiter, *bytes.Buffer, *clock) {
	var buf bytes.Buffer
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	l := logx.RateLimit(h, burst, interval, c.now)
	return slog.New(l), l, &buf, c
}

func TestRateLimit(t *testing.T) {
	log, lim, buf, c := newLogger(3, time.Minute)
	for i := range 10 {
		log.Error("client gone", "i", i)
		log.Info("other")
	}
	log.With("k", "v").Error("client gone", "i", 10) // shares the counts
	if got, want := strings.Count(buf.String(), `msg="client gone"`), 3; got != want {
		t.Errorf("%d lines of a repeated message passed in one interval, want %d:\n%s", got, want, buf)
	}
	if got := strings.Count(buf.String(), "msg=other"); got != 3 {
		t.Errorf("%d lines of another message, want 3", got)
	}
	buf.Reset()
	c.t = c.t.Add(time.Minute)
	log.Error("client gone", "i", 11)
	want := "level=ERROR msg=\"suppressed repeated log lines\" message=\"client gone\" suppressed=8\nlevel=ERROR msg=\"client gone\" i=11\n"
	if buf.String() != want {
		t.Errorf("after the interval:\n%s\nwant\n%s", buf, want)
	}
	buf.Reset()
	if err := lim.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "level=INFO msg=\"suppressed repeated log lines\" message=other suppressed=7\n"; buf.String() != want {
		t.Errorf("flush:\n%s\nwant\n%s", buf, want)
	}
	buf.Reset()
	if err := lim.Flush(context.Background()); err != nil || buf.Len() != 0 {
		t.Errorf("a second flush: %v, %q", err, buf)
	}
}

// TestRateLimitBoundsKeys: many distinct messages do not grow the counts without bound,
// and what is forgotten is reported.
func TestRateLimitBoundsKeys(t *testing.T) {
	log, lim, buf, _ := newLogger(1, time.Hour)
	for i := range 3000 {
		log.Warn(fmt.Sprintf("message %d", i))
		log.Warn(fmt.Sprintf("message %d", i))
	}
	if err := lim.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "suppressed=1"); got != 3000 {
		t.Errorf("%d suppressed reports, want 3000", got)
	}
}

func TestClientGone(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{context.Canceled, true},
		{fmt.Errorf("upload: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, true},
		{&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{net.ErrClosed, true},
		{errors.New("disk full"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := logx.ClientGone(tt.err); got != tt.want {
			t.Errorf("ClientGone(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
