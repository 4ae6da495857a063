package testutil_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/internal/testutil"
)

func TestDecodeOutput(t *testing.T) {
	t.Parallel()
	lines := testutil.DecodeOutput(t, []byte(`{"id":"batch_req_1","custom_id":"a","response":{"status_code":200,"request_id":"r1","body":{}},"error":null}
{"id":"batch_req_2","custom_id":null,"response":null,"error":{"code":"invalid_request","message":"bad"}}
`))
	if len(lines) != 2 || lines[0].Custom() != "a" || lines[0].Response.StatusCode != 200 ||
		lines[1].CustomID != nil || lines[1].Custom() != "" || lines[1].Error.Code != "invalid_request" {
		t.Errorf("lines %+v", lines)
	}
}

func TestPoll(t *testing.T) {
	t.Parallel()
	n := 0
	got := testutil.Poll(t, time.Minute, time.Microsecond, func() (int, error) { n++; return n, nil }, func(v int) bool { return v == 3 })
	if got != 3 {
		t.Errorf("Poll = %d, want 3", got)
	}
}

// fatal records a failure instead of ending the test, to check Poll's.
type fatal struct {
	testing.TB
	msg string
}

func (f *fatal) Helper() {}
func (f *fatal) Fatalf(format string, args ...any) {
	f.msg = format
	panic(f)
}

func TestPollFails(t *testing.T) {
	t.Parallel()
	for name, get := range map[string]func() (int, error){
		"error":   func() (int, error) { return 0, errors.New("boom") },
		"timeout": func() (int, error) { return 0, nil },
	} {
		f := &fatal{TB: t}
		func() {
			defer func() {
				if r := recover(); r != f {
					t.Errorf("%s: Poll did not fail the test (recovered %v)", name, r)
				}
			}()
			testutil.Poll(f, time.Millisecond, time.Microsecond, get, func(int) bool { return false })
		}()
	}
}
