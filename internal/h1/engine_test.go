package h1

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rawServer accepts connections on loopback and hands each to serve, with a reader of
// its requests; it counts the connections and the requests read with next.
type rawServer struct {
	url      string
	conns    atomic.Int64
	requests atomic.Int64
}

// startRaw starts a rawServer; serve's connection is closed when serve returns.
func startRaw(t *testing.T, serve func(c net.Conn, next func() bool)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{url: "http://" + ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				serve(c, func() bool {
					req, err := http.ReadRequest(br)
					if err != nil {
						return false
					}
					_, _ = io.Copy(io.Discard, req.Body)
					s.requests.Add(1)
					return true
				})
			})
		}
	})
	return s
}

// engineTransport is a Transport as the engine's client makes it: it never sends a
// written request twice.
func engineTransport(t *testing.T, base string) *Transport {
	t.Helper()
	tr, ok := New(base, Config{MaxIdle: 4, Gzip: true})
	if !ok {
		t.Fatalf("no transport for %s", base)
	}
	t.Cleanup(tr.Close)
	return tr
}

// TestIdleConnectionClosedByServer does not send on an idle connection its server
// closed, as servers with a short keep-alive timeout do: the request goes on a new
// connection, sent once.
func TestIdleConnectionClosedByServer(t *testing.T) {
	closeNow, closed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := startRaw(t, func(c net.Conn, next func() bool) {
		for next() {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			first := false
			once.Do(func() { first = true })
			if first {
				<-closeNow
				c.Close()
				close(closed)
				return
			}
		}
	})
	tr := engineTransport(t, srv.url)
	tr.checkAfter = 0 // the connection is closed as soon as it idles, not after a second
	if _, got, err := post(t, tr, srv.url+"/v1/x", "{}"); err != nil || got != "ok" {
		t.Fatalf("first request: %q, %v", got, err)
	}
	close(closeNow)
	<-closed
	if _, got, err := post(t, tr, srv.url+"/v1/x", "{}"); err != nil || got != "ok" {
		t.Fatalf("a request after the server closed the idle connection: %q, %v", got, err)
	}
	if r, c := srv.requests.Load(), srv.conns.Load(); r != 2 || c != 2 {
		t.Fatalf("%d requests on %d connections, want 2 on 2", r, c)
	}
}

// TestNoResendOfWrittenRequest does not send a POST twice when the server read it and
// closed the connection without an answer: the server may have acted on it.
func TestNoResendOfWrittenRequest(t *testing.T) {
	srv := startRaw(t, func(c net.Conn, next func() bool) {
		if next() {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		next() // read, then dropped unanswered
	})
	tr := engineTransport(t, srv.url)
	if _, got, err := post(t, tr, srv.url+"/v1/x", "{}"); err != nil || got != "ok" {
		t.Fatalf("first request: %q, %v", got, err)
	}
	if _, _, err := post(t, tr, srv.url+"/v1/x", "{}"); err == nil {
		t.Fatal("no error for a request dropped unanswered")
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("the server read %d requests, want 2: the dropped one was sent again", n)
	}
}

// TestBrokenAnswers fails on an answer cut short, never returning a short body as a
// whole one, and does not reuse its connection.
func TestBrokenAnswers(t *testing.T) {
	for _, tt := range []struct{ name, answer string }{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"},
		{"head", "HTTP/1.1 200 OK\r\nContent-Len"},
		{"reset", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRaw(t, func(c net.Conn, next func() bool) {
				if next() {
					_, _ = io.WriteString(c, tt.answer)
					if tt.name == "reset" {
						_ = c.(*net.TCPConn).SetLinger(0) // Close sends a reset
					}
				}
			})
			tr := engineTransport(t, srv.url)
			for i := range 2 {
				if _, got, err := post(t, tr, srv.url+"/v1/x", "{}"); err == nil {
					t.Fatalf("request %d: %q and no error", i, got)
				}
			}
			if r, c := srv.requests.Load(), srv.conns.Load(); r != 2 || c != 2 {
				t.Fatalf("%d requests on %d connections, want 2 on 2", r, c)
			}
		})
	}
}

// TestInformationalAndClosingAnswers skips 1xx answers to read the real one, and does
// not reuse a connection whose answer said Connection: close.
func TestInformationalAndClosingAnswers(t *testing.T) {
	srv := startRaw(t, func(c net.Conn, next func() bool) {
		for next() {
			_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := engineTransport(t, srv.url)
	for i := range 2 {
		if code, got, err := post(t, tr, srv.url+"/v1/x", "{}"); err != nil || code != http.StatusOK || got != "ok" {
			t.Fatalf("request %d: %d %q, %v", i, code, got, err)
		}
	}
	if c := srv.conns.Load(); c != 2 {
		t.Fatalf("%d connections, want 2: one per answer with Connection: close", c)
	}
}

// TestCancelBeforeAnswer ends a request whose context ends while its answer's head is
// awaited with the context's error, and does not reuse its connection.
func TestCancelBeforeAnswer(t *testing.T) {
	got := make(chan struct{}, 1)
	srv, conns := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/hang" {
			_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection from here on
			got <- struct{}{}
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	tr := engineTransport(t, srv.URL)
	if _, body, err := post(t, tr, srv.URL+"/v1/x", "{}"); err != nil || body != "ok" {
		t.Fatalf("first request: %q, %v", body, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-got
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/hang", strings.NewReader("{}"))
	if resp, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, body, err := post(t, tr, srv.URL+"/v1/x", "{}"); err != nil || body != "ok" {
		t.Fatalf("a request after: %q, %v", body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: the cancelled request's is not reused", n)
	}
}

// TestGzipAnswers asks for gzip when configured to, decodes the answer, and reuses the
// connection of an answer read to its end.
func TestGzipAnswers(t *testing.T) {
	const text = `{"object":"list","data":[]}`
	srv, conns := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			_, _ = io.WriteString(w, "plain: "+text)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, text)
		_ = zw.Close()
	})
	tr := engineTransport(t, srv.URL)
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/x", strings.NewReader("{}"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != text || !resp.Uncompressed || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("request %d: %q, %v, uncompressed %v, header %v", i, b, err, resp.Uncompressed, resp.Header)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 2 requests one after the other, want 1", n)
	}
	plain := newTransport(t, srv.URL) // no Gzip
	if _, got, err := post(t, plain, srv.URL+"/v1/x", "{}"); err != nil || got != "plain: "+text {
		t.Fatalf("without Gzip: %q, %v", got, err)
	}
}

// TestNoFallback refuses a request it does not send itself when it has no fallback.
func TestNoFallback(t *testing.T) {
	tr := engineTransport(t, "http://127.0.0.1:1")
	if _, _, err := post(t, tr, "https://127.0.0.1:1/v1/x", "{}"); err == nil || !strings.Contains(err.Error(), "no fallback") {
		t.Fatalf("err = %v, want the request refused", err)
	}
}

// TestCancelMidBody ends the read of an answer whose request's context ended with the
// context's error, as net/http does, not with the connection's deadline.
func TestCancelMidBody(t *testing.T) {
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	tr := engineTransport(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/x", strings.NewReader("{}"))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestLearnsEarlyClose checks every idle connection before use, whatever its idle time,
// once its server was seen closing a connection right after its answer (without
// Connection: close): the first reuse fails, as it cannot know; no later one does.
func TestLearnsEarlyClose(t *testing.T) {
	closed := make(chan struct{}, 16)
	srv := startRaw(t, func(c net.Conn, next func() bool) {
		if next() {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			c.Close()
			closed <- struct{}{}
		}
	})
	tr := engineTransport(t, srv.url)
	var failed int
	for i := range 6 {
		_, got, err := post(t, tr, srv.url+"/v1/x", "{}")
		switch {
		case err != nil:
			failed++
		case got != "ok":
			t.Fatalf("request %d: %q", i, got)
		default:
			<-closed // the server closed the connection before the next request
		}
	}
	if failed != 1 {
		t.Fatalf("%d of 6 requests failed on a connection closed after its answer, want 1 (the first reuse)", failed)
	}
}
