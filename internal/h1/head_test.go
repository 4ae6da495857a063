package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// headCases are answers as a server sends them; fast says whether readHead reads the
// head itself (otherwise it leaves it to http.ReadResponse).
var headCases = []struct {
	name, raw string
	fast      bool
}{
	{"sim answer", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: req_1\r\nX-Ratelimit-Limit-Requests: 30000\r\nDate: Thu, 03 Dec 2026 19:00:00 GMT\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\nHTTP/1.1 200 OK\r\n", true},
	{"lower-case names, spaces, repeats", "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\nretry-after:  1 \r\nx-a: 1\r\nX-A:\t2\t\r\nx-empty:\r\n\r\n{}", true},
	{"no reason", "HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n", true},
	{"reason with a space after", "HTTP/1.1 503 \r\nContent-Length: 1\r\n\r\nx", true},
	{"high bytes", "HTTP/1.1 200 \xc3\xa9\r\nX-N: \xff\xfe\r\nContent-Length: 1\r\n\r\nx", true},
	{"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true},
	{"leading zeros", "HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567", true},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false},
	{"no length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", false},
	{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false},
	{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", false},
	{"empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nx", false},
	{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false},
	{"pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 1\r\n\r\nx", false},
	{"trailer", "HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 1\r\n\r\nx", false},
	{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false},
	{"informational", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false},
	{"no content", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false},
	{"not modified", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", false},
	{"bare LF inside", "HTTP/1.1 200 OK\r\nX: a\nContent-Length: 1\r\n\r\nx", false},
	{"folded line", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nx", false},
	{"space before colon", "HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 1\r\n\r\nx", false},
	{"underscore name", "HTTP/1.1 200 OK\r\nX_Y: a\r\nContent-Length: 1\r\n\r\nx", false},
	{"control byte", "HTTP/1.1 200 OK\r\nX: a\x01\r\nContent-Length: 1\r\n\r\nx", false},
	{"head not all there", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", false},
	{"not a status", "HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\nx", false},
	{"no colon", "HTTP/1.1 200 OK\r\nX\r\nContent-Length: 1\r\n\r\nx", false},
}

// An answer head readHead reads gives what http.ReadResponse gives: the same response,
// the same body and body error, and the same bytes left after it.
func TestReadHeadAsReadResponse(t *testing.T) {
	for _, tc := range headCases {
		t.Run(tc.name, func(t *testing.T) {
			fast := compareReadHead(t, []byte(tc.raw), http.MethodPost)
			if fast != tc.fast {
				t.Errorf("readHead read it itself: %v, want %v", fast, tc.fast)
			}
		})
	}
}

// A head readHead leaves alone is not read from at all, and neither is the answer to a
// HEAD request.
func TestReadHeadLeavesOthers(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
	if fast := compareReadHead(t, []byte(raw), http.MethodHead); fast {
		t.Error("readHead read the answer to a HEAD request")
	}
}

func FuzzReadHead(f *testing.F) {
	for _, tc := range headCases {
		f.Add([]byte(tc.raw), false)
	}
	f.Add([]byte(headCases[0].raw), true)
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := http.MethodPost
		if head {
			method = http.MethodHead
		}
		compareReadHead(t, raw, method)
	})
}

// compareReadHead reads raw with readHead and with http.ReadResponse, compares what
// they give when readHead reads it, and checks that it read nothing otherwise. It
// reports whether readHead read it.
func compareReadHead(t *testing.T, raw []byte, method string) bool {
	t.Helper()
	req, err := http.NewRequest(method, "http://h1.test/v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
	_, _ = br.Peek(1) // as try does
	buffered := br.Buffered()
	got, fast := readHead(br, req)
	if !fast {
		if br.Buffered() != buffered {
			t.Fatalf("readHead declined, yet read %d bytes", buffered-br.Buffered())
		}
		return false
	}
	wbr := bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
	want, err := http.ReadResponse(wbr, req)
	if err != nil {
		t.Fatalf("readHead read %q, http.ReadResponse fails: %v", raw, err)
	}
	gotBody, gotErr := io.ReadAll(got.Body)
	wantBody, wantErr := io.ReadAll(want.Body)
	if !bytes.Equal(gotBody, wantBody) || !errors.Is(gotErr, wantErr) {
		t.Errorf("body %q, %v; http.ReadResponse's %q, %v", gotBody, gotErr, wantBody, wantErr)
	}
	_, gotAgain := got.Body.Read(make([]byte, 1))
	_, wantAgain := want.Body.Read(make([]byte, 1))
	if !errors.Is(gotAgain, wantAgain) {
		t.Errorf("read after the end: %v; http.ReadResponse's body: %v", gotAgain, wantAgain)
	}
	_ = got.Body.Close()
	_ = want.Body.Close()
	if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
		t.Errorf("body is http.NoBody: %v; http.ReadResponse's: %v", got.Body == http.NoBody, want.Body == http.NoBody)
	}
	gotRest, _ := io.ReadAll(br)
	wantRest, _ := io.ReadAll(wbr)
	if !bytes.Equal(gotRest, wantRest) {
		t.Errorf("left %q after the answer; http.ReadResponse left %q", gotRest, wantRest)
	}
	got.Body, want.Body = nil, nil
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(http.Request{}), cmp.Comparer(func(a, b *http.Request) bool { return a == b })); diff != "" {
		t.Errorf("response (-http.ReadResponse +readHead):\n%s", diff)
	}
	return true
}

func BenchmarkReadHead(b *testing.B) {
	raw := []byte(headCases[0].raw)
	req, err := http.NewRequest(http.MethodPost, "http://h1.test/v1", nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, impl := range []struct {
		name string
		read func(*bufio.Reader, *http.Request) (*http.Response, error)
	}{{"readResponse", readResponse}, {"http.ReadResponse", http.ReadResponse}} {
		b.Run(impl.name, func(b *testing.B) {
			r := bytes.NewReader(raw)
			br := bufio.NewReaderSize(r, 4<<10)
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(raw)
				br.Reset(r)
				_, _ = br.Peek(1) // as try does
				resp, err := impl.read(br, req)
				if err != nil {
					b.Fatal(err)
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
