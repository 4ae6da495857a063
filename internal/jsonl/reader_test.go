package jsonl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-llm/sluice"
)

// got is one result of Reader.Next, or the io.EOF at the end (with the line count).
type got struct {
	Line int64
	Data string
	Err  string
}

// readAll calls Next until it returns something other than a line or a LineError.
func readAll(t *testing.T, r *Reader) ([]got, error) {
	t.Helper()
	var out []got
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("Next never ends")
		}
		line, data, err := r.Next()
		var le *sluice.LineError
		switch {
		case err == nil:
			out = append(out, got{Line: line, Data: string(data)})
		case errors.As(err, &le):
			if data != nil {
				t.Errorf("line %d: data %q returned with a LineError", line, data)
			}
			if le.Line != line {
				t.Errorf("LineError.Line = %d, Next returned line %d", le.Line, line)
			}
			out = append(out, got{Line: line, Err: err.Error()})
		case errors.Is(err, io.EOF):
			out = append(out, got{Line: line, Err: "EOF"})
			return out, nil
		default:
			return out, err
		}
	}
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 11)
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    []got
	}{
		{name: "empty input", in: "", want: []got{{0, "", "EOF"}}},
		{name: "one line", in: "{}\n", want: []got{{1, "{}", ""}, {1, "", "EOF"}}},
		{name: "last line without newline", in: "a\nb", want: []got{{1, "a", ""}, {2, "b", ""}, {2, "", "EOF"}}},
		{name: "CRLF", in: "a\r\nb\r\n", want: []got{{1, "a", ""}, {2, "b", ""}, {2, "", "EOF"}}},
		{name: "CRLF last line without newline", in: "a\r\nb\r", want: []got{{1, "a", ""}, {2, "b", ""}, {2, "", "EOF"}}},
		{name: "only the last CR is stripped", in: "a\r\r\n", want: []got{{1, "a\r", ""}, {1, "", "EOF"}}},
		{name: "CR inside a line is kept", in: "a\rb\n", want: []got{{1, "a\rb", ""}, {1, "", "EOF"}}},
		{
			name: "blank lines are counted but not returned",
			in:   "\n a\n\n  \t\n\r\nb\n\n",
			want: []got{{2, " a", ""}, {6, "b", ""}, {7, "", "EOF"}},
		},
		{name: "only blank lines", in: "\n\n \n", want: []got{{3, "", "EOF"}}},
		{name: "BOM on line 1", in: "\xEF\xBB\xBF{}\n{}\n", want: []got{{1, "{}", ""}, {2, "{}", ""}, {2, "", "EOF"}}},
		{name: "BOM alone on line 1 is blank", in: "\xEF\xBB\xBF\r\n{}", want: []got{{2, "{}", ""}, {2, "", "EOF"}}},
		{name: "BOM on line 2 is kept", in: "a\n\xEF\xBB\xBFb\n", want: []got{{1, "a", ""}, {2, "\xEF\xBB\xBFb", ""}, {2, "", "EOF"}}},
		{
			name: "long line skipped, next line read", in: "short\n" + long + "\nnext\n", maxLine: 10,
			want: []got{{1, "short", ""}, {2, "", "line 2: line is longer than 10 bytes"}, {3, "next", ""}, {3, "", "EOF"}},
		},
		{
			name: "long last line without newline", in: "a\n" + long, maxLine: 10,
			want: []got{{1, "a", ""}, {2, "", "line 2: line is longer than 10 bytes"}, {2, "", "EOF"}},
		},
		{
			name: "a line of exactly the limit is accepted, terminator and BOM aside", maxLine: 10,
			in:   "\xEF\xBB\xBF" + long[:10] + "\r\n" + long[:10] + "\n" + long[:10],
			want: []got{{1, long[:10], ""}, {2, long[:10], ""}, {3, long[:10], ""}, {3, "", "EOF"}},
		},
		{
			name: "long blank line is still too long", in: strings.Repeat(" ", 11) + "\n", maxLine: 10,
			want: []got{{1, "", "line 1: line is longer than 10 bytes"}, {1, "", "EOF"}},
		},
		{
			name: "binary garbage", in: "\x00\xff\xfe\n\x1b[2J\x00\r\n\xc3\x28",
			want: []got{{1, "\x00\xff\xfe", ""}, {2, "\x1b[2J\x00", ""}, {3, "\xc3\x28", ""}, {3, "", "EOF"}},
		},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			for _, bufSize := range []int{16, readBufSize} {
				t.Run(fmt.Sprintf("%s/%s/buf%d", tt.name, rd.name, bufSize), func(t *testing.T) {
					r := newReaderSize(rd.wrap(strings.NewReader(tt.in)), tt.maxLine, bufSize)
					out, err := readAll(t, r)
					if err != nil {
						t.Fatalf("unexpected error %v", err)
					}
					if diff := cmp.Diff(tt.want, out); diff != "" {
						t.Errorf("lines (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// readers deliver the same input in different pieces; the lines must not depend on it.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"onebyte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"dataerr", iotest.DataErrReader},
}

func TestReaderLinesLongerThanBuffer(t *testing.T) {
	// Lines that span several bufio buffers go through the copying path.
	const max = 200_000
	fits := strings.Repeat("a", max)
	tooLong := strings.Repeat("b", 3*max)
	in := fits + "\r\n" + tooLong + "\n{}\n" + fits[:max-1] + "c\n" + tooLong
	r := NewReader(strings.NewReader(in), max)
	out, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{1, fits, ""},
		{2, "", "line 2: line is longer than 200000 bytes"},
		{3, "{}", ""},
		{4, fits[:max-1] + "c", ""},
		{5, "", "line 5: line is longer than 200000 bytes"},
		{5, "", "EOF"},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestReaderSkipsLongLineWithoutHoldingIt(t *testing.T) {
	const max = 1000
	in := strings.Repeat("x", 8<<20) + "\nok\n"
	r := NewReader(strings.NewReader(in), max)
	if _, _, err := r.Next(); err == nil {
		t.Fatal("8 MiB line accepted with a 1000-byte limit")
	}
	if c := cap(r.buf); c > 2*(max+lineSlack) {
		t.Errorf("line buffer grew to %d bytes while skipping a long line, want at most %d", c, 2*(max+lineSlack))
	}
	line, data, err := r.Next()
	if err != nil || line != 2 || string(data) != "ok" {
		t.Fatalf("after the long line: Next() = %d, %q, %v; want 2, \"ok\", nil", line, data, err)
	}
}

func TestReaderDropsHugeLineBuffer(t *testing.T) {
	huge := strings.Repeat("x", 4*keepLineBuf)
	r := NewReader(strings.NewReader(huge+"\n{}\n"), 0)
	if _, data, err := r.Next(); err != nil || len(data) != len(huge) {
		t.Fatalf("huge line: %d bytes, %v", len(data), err)
	}
	if _, data, err := r.Next(); err != nil || string(data) != "{}" {
		t.Fatalf("next line: %q, %v", data, err)
	}
	if c := cap(r.buf); c > keepLineBuf {
		t.Errorf("line buffer of %d bytes kept after a huge line", c)
	}
}

func TestReaderDefaultLimit(t *testing.T) {
	for _, max := range []int{0, -1} {
		if r := NewReader(strings.NewReader(""), max); r.max != DefaultMaxLine {
			t.Errorf("NewReader(r, %d) limit = %d, want DefaultMaxLine", max, r.max)
		}
	}
}

var errBoom = errors.New("boom")

func TestReaderReadError(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []got
		msg  string
	}{
		{name: "after whole lines", in: "a\n\nb\n", want: []got{{1, "a", ""}, {3, "b", ""}}, msg: "read line 4: boom"},
		{name: "in the middle of a line", in: "a\npartial", want: []got{{1, "a", ""}}, msg: "read line 2: boom"},
		{name: "in a long line", in: "a\n" + strings.Repeat("x", 100), want: []got{{1, "a", ""}}, msg: "read line 2: boom"},
	}
	for _, tt := range tests {
		for _, bufSize := range []int{16, readBufSize} {
			t.Run(fmt.Sprintf("%s/buf%d", tt.name, bufSize), func(t *testing.T) {
				src := io.MultiReader(strings.NewReader(tt.in), iotest.ErrReader(errBoom))
				r := newReaderSize(src, 10, bufSize)
				out, err := readAll(t, r)
				if diff := cmp.Diff(tt.want, out); diff != "" {
					t.Errorf("lines (-want +got):\n%s", diff)
				}
				if !errors.Is(err, errBoom) || err.Error() != tt.msg {
					t.Fatalf("error = %v, want %q wrapping errBoom", err, tt.msg)
				}
				if _, _, again := r.Next(); !errors.Is(again, errBoom) {
					t.Errorf("second Next after the error = %v, want the same error", again)
				}
			})
		}
	}
}

// eofOnce fails the test if it is read again after reporting io.EOF, as a terminal would
// block there.
type eofOnce struct {
	t   *testing.T
	r   io.Reader
	eof bool
}

func (e *eofOnce) Read(p []byte) (int, error) {
	if e.eof {
		e.t.Error("read again after io.EOF")
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		e.eof = true
	}
	return n, err
}

func TestReaderStopsAtEOF(t *testing.T) {
	for _, in := range []string{"a\nb", "a\nb\n", ""} {
		r := NewReader(&eofOnce{t: t, r: strings.NewReader(in)}, 0)
		if _, err := readAll(t, r); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("Next after EOF = %v, want io.EOF", err)
			}
		}
	}
}

// referenceLines is what a Reader must return for in, worked out the slow, obvious way.
func referenceLines(in []byte, max int) []got {
	var out []got
	phys := bytes.Split(in, []byte("\n"))
	if len(phys[len(phys)-1]) == 0 {
		phys = phys[:len(phys)-1] // a final "\n" ends the last line; it does not start one
	}
	for i, p := range phys {
		n := int64(i + 1)
		p = bytes.TrimSuffix(p, []byte("\r"))
		if n == 1 {
			p = bytes.TrimPrefix(p, bom)
		}
		switch {
		case len(p) > max:
			out = append(out, got{Line: n, Err: fmt.Sprintf("line %d: line is longer than %d bytes", n, max)})
		case len(bytes.Trim(p, " \t\r")) > 0:
			out = append(out, got{Line: n, Data: string(p)})
		}
	}
	return append(out, got{Line: int64(len(phys)), Err: "EOF"})
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("a\nb"), uint8(10))
	f.Add([]byte("\xEF\xBB\xBF{}\r\n\n  \r\nxxxxxxxxxxxxxxxxxxxxxxxxxx\n{}"), uint8(5))
	f.Add([]byte("\r\r\n\n\x00\xff"), uint8(1))
	f.Add(bytes.Repeat([]byte("0123456789abcdef"), 8), uint8(40))
	f.Fuzz(func(t *testing.T, in []byte, max uint8) {
		limit := int(max)%64 + 1
		want := referenceLines(in, limit)
		for _, rd := range readers {
			r := newReaderSize(rd.wrap(bytes.NewReader(in)), limit, 16)
			out, err := readAll(t, r)
			if err != nil {
				t.Fatalf("%s: unexpected error %v", rd.name, err)
			}
			if diff := cmp.Diff(want, out); diff != "" {
				t.Fatalf("%s: lines (-want +got):\n%s", rd.name, diff)
			}
			// Line numbers strictly increase, then EOF repeats the last one.
			for i := 1; i < len(out)-1; i++ {
				if out[i].Line <= out[i-1].Line {
					t.Fatalf("%s: line %d after line %d", rd.name, out[i].Line, out[i-1].Line)
				}
			}
		}
	})
}
