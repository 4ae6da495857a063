package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve serves h on loopback and counts the connections it accepted.
func serve(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func newTransport(t *testing.T, base string) *Transport {
	t.Helper()
	fallback := roundTripperFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("fallback") })
	tr, ok := New(base, Config{MaxIdle: 4, Fallback: fallback, ResendWritten: true})
	if !ok {
		t.Fatalf("no h1 transport for %s", base)
	}
	t.Cleanup(tr.Close)
	return tr
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// post sends body to url with tr and returns the answer's status and body.
func post(t *testing.T, tr http.RoundTripper, url, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestReusesConnections sends requests one after the other on one connection, with
// fixed-length, chunked and empty answers, and the request's body and headers as sent.
func TestReusesConnections(t *testing.T) {
	srv, conns := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch string(b) {
		case "chunked":
			_, _ = io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "b")
		case "empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Content-Type")+" "+string(b))
		}
	})
	tr := newTransport(t, srv.URL)
	for i, c := range []struct{ body, want string }{
		{`{"a":1}`, "POST /v1/x?y=1 application/json {\"a\":1}"},
		{"chunked", "ab"},
		{"empty", ""},
		{`{"b":2}`, "POST /v1/x?y=1 application/json {\"b\":2}"},
	} {
		_, got, err := post(t, tr, srv.URL+"/v1/x?y=1", c.body)
		if err != nil || got != c.want {
			t.Fatalf("request %d: %q, %v; want %q", i, got, err, c.want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 4 requests one after the other, want 1", n)
	}
}

// TestRetriesClosedIdleConnection sends a request again on a new connection when the
// server closed the idle one it was sent on before answering.
func TestRetriesClosedIdleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	var requests atomic.Int64
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// One answer, said to be kept alive, then the connection is closed.
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				requests.Add(1)
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			c.Close()
		}
	})
	tr := newTransport(t, "http://"+ln.Addr().String())
	for i := range 3 {
		if _, got, err := post(t, tr, "http://"+ln.Addr().String()+"/v1/x", "{}"); err != nil || got != "ok" {
			t.Fatalf("request %d: %q, %v", i, got, err)
		}
	}
	if n := requests.Load(); n != 3 {
		t.Fatalf("the server read %d requests, want 3", n)
	}
}

// TestClosesUnfinishedConnections closes a connection whose answer was not read to its
// end, or whose request's context ended while its answer was read, and never reuses it.
func TestClosesUnfinishedConnections(t *testing.T) {
	release := make(chan struct{})
	srv, conns := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first part")
		w.(http.Flusher).Flush()
		if r.URL.Path == "/v1/wait" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	defer close(release)
	tr := newTransport(t, srv.URL)
	get := func(ctx context.Context, path string) io.ReadCloser {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, bytes.NewReader([]byte("{}")))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 5)); err != nil {
			resp.Body.Close()
			t.Fatal(err)
		}
		return resp.Body
	}
	get(context.Background(), "/v1/wait").Close() // before its end: the server is still writing it
	ctx, cancel := context.WithCancel(context.Background())
	body := get(ctx, "/v1/wait")
	defer body.Close()
	cancel()
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(body)
		read <- err
	}()
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("the answer was read to an end after its request's context ended")
		}
	case <-time.After(10 * time.Second): // a bound on the failure, not a wait for success
		t.Fatal("the answer was still being read 10 s after its request's context ended")
	}
	if _, got, err := post(t, tr, srv.URL+"/v1/done", "{}"); err != nil || got != "first part" {
		t.Fatalf("a request after: %q, %v", got, err)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3: one per unfinished answer and one more", n)
	}
}

// TestFallback leaves what it does not send itself to the fallback transport, and
// refuses a header value that would end the request's head.
func TestFallback(t *testing.T) {
	tr := newTransport(t, "http://127.0.0.1:1/v1")
	for _, url := range []string{"https://127.0.0.1:1/v1/x", "http://127.0.0.2:1/v1/x"} {
		if _, _, err := post(t, tr, url, "{}"); err == nil || err.Error() != "fallback" {
			t.Fatalf("%s: err = %v, want the fallback's", url, err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/v1/x", strings.NewReader("{}"))
	req.Header["X-Bad"] = []string{"a\r\nX-Injected: 1"}
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "invalid value of header X-Bad") {
		t.Fatalf("err = %v, want the header refused", err)
	}
	for _, base := range []string{"https://api.example.com/v1", "http://user:pw@127.0.0.1:1/v1"} {
		if _, ok := New(base, Config{}); ok {
			t.Fatalf("an h1 transport for %s", base)
		}
	}
}
