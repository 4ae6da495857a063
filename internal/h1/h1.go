// Package h1 is sluice's own HTTP/1.1 client for plain-HTTP upstreams: a pool of
// keep-alive connections that a request is written to and its answer read from on the
// caller's goroutine. The engine's upstream client (package openai) and the gateway use
// it for http:// upstreams reached without a proxy; everything else stays with net/http.
package h1

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Transport sends the requests of one plain-HTTP upstream over its own pool of
// HTTP/1.1 keep-alive connections, on the caller's goroutine: it writes a request and
// reads its answer's head itself, and the answer's body is read from the connection
// as the caller reads it. net/http's Transport hands each request to a writing and a
// reading goroutine of the connection instead, which cost about a quarter of the
// gateway's CPU a request on loopback (bench gateway). It serves one http:// upstream
// reached without a proxy; https (TLS, HTTP/2) stays with net/http, and so does any
// request it does not write itself (see RoundTrip). It is safe for concurrent use.
//
// A connection goes back to the pool when its answer's body was read to its end
// (Connection: close aside), and is closed when the body is closed before, or the
// request's context ends while it is in use: a connection whose answer may still be
// arriving is never used again. An idle connection is closed once it has been idle for
// IdleTimeout, when the pool is next used. An idle connection is checked for having been
// closed by its server before it is sent on when it idled checkAfter (100 ms) or more, or
// once a request met a reused connection its server had closed: a server that closes
// keep-alive connections right after their answers then costs a check (a system call) a
// request instead of a failed send.
//
// It asks for gzip answers and decodes them only when configured to (Config.Gzip).
type Transport struct {
	host        string // URL.Host of the requests it sends
	addr        string // host:port dialled
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	checkAfter  time.Duration     // an idle connection is checked for being open after this
	fallback    http.RoundTripper // every request not to host, or not one it writes
	gzip        bool              // Config.Gzip
	resend      bool              // Config.ResendWritten
	// closesEarly is set once a reused connection was found closed by its server when a
	// request was sent on it: from then on every idle connection is checked before use,
	// whatever its idle time.
	closesEarly atomic.Bool

	mu     sync.Mutex
	idle   []*conn // the most recently used last
	closed bool
}

// conn is one connection of a Transport.
type conn struct {
	net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer // writes to the conn itself, which notes that it wrote
	reused bool          // it answered a request before
	wrote  bool          // a byte of the current request was written
	idle   time.Time     // when it went back to the pool
}

// Write writes p to the connection and notes that a byte was written.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.wrote = true
	}
	return n, err
}

// Transport timeouts. There is no timeout on an answer: a model may think for minutes
// before its first byte, and the request's context bounds the wait.
const (
	// IdleTimeout is how long a Transport keeps a connection nobody uses: below the
	// keep-alive timeouts that servers commonly set, so that it rarely sends on a
	// connection that its server is closing.
	IdleTimeout = 30 * time.Second
	// DialTimeout bounds the making of a connection (the context may end it sooner).
	DialTimeout = 30 * time.Second
	// checkAfter is how long a connection idles before it is checked for having been
	// closed by its server when taken from the pool: the check is a system call (about
	// 4 µs, a tenth of a request's HTTP cost on a busy loopback run), and servers close
	// idle connections after a keep-alive timeout of a second or more.
	checkAfter = 100 * time.Millisecond
	// tcpKeepAlive is the period of TCP keep-alive probes on a connection.
	tcpKeepAlive = 30 * time.Second
)

// Config configures a Transport. The zero value keeps one idle connection, asks for no
// compression, and has no fallback.
type Config struct {
	// MaxIdle is how many idle connections are kept; below 1 counts as 1.
	MaxIdle int
	// Fallback sends the requests the Transport does not send itself (see RoundTrip);
	// nil refuses them with an error.
	Fallback http.RoundTripper
	// Gzip asks for gzip answers (Accept-Encoding: gzip, when the request names no
	// encoding of its own and is no HEAD or Range request) and decodes them, as
	// net/http's Transport does unless told not to: the answer's Content-Encoding and
	// Content-Length are removed and Uncompressed is set.
	Gzip bool
	// ResendWritten sends a request once more on a new connection when a reused
	// connection was closed (an end or a reset) after the request was written to it and
	// before any byte of its answer: the usual sign of a server closing an idle
	// connection as the request went out, but also that of a server that read the
	// request and then failed, so a request may reach its server twice. Without it, such
	// a request is sent again only when net/http would send it again (GET, HEAD,
	// OPTIONS, TRACE, or an Idempotency-Key header); a request of which nothing was
	// written is sent again in any case. An idle connection its server closed after
	// 100 ms or more of idling, or any once the server was seen closing connections early,
	// is found before use (on Unix) and not sent on.
	ResendWritten bool
}

// New returns a Transport for the upstream at base, or false when base is not a
// plain-HTTP URL without user information that is reached without a proxy (HTTP_PROXY
// and NO_PROXY, as http.ProxyFromEnvironment reads them).
func New(base string, cfg Config) (*Transport, bool) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
		return nil, false
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		return nil, false
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return &Transport{
		host: u.Host, addr: net.JoinHostPort(u.Hostname(), port),
		dialer:  net.Dialer{Timeout: DialTimeout, KeepAlive: tcpKeepAlive},
		maxIdle: max(cfg.MaxIdle, 1), idleTimeout: IdleTimeout, checkAfter: checkAfter,
		fallback: cfg.Fallback, gzip: cfg.Gzip,
		resend: cfg.ResendWritten,
	}, true
}

// RoundTrip sends req and reads its answer's head. A request to another host, with a
// body of unknown length, or with headers it does not write (Expect, Transfer-Encoding,
// a trailer) goes to the fallback transport. A request that fails on a reused
// connection before any byte of its answer came, as when the server closed the
// connection while it was idle, is sent once more on a new one when its body can be
// read again (GetBody), and either nothing of it was written or it may be sent twice
// (Config.ResendWritten); no other request is sent twice. Its errors are those of the
// connection, as net/http's Transport returns them (the request's context's error when
// it ended), not wrapped with the request's URL.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	if req.URL.Scheme != "http" || req.URL.Host != t.host || (hasBody && req.ContentLength <= 0) ||
		req.ContentLength < 0 || len(req.TransferEncoding) > 0 || req.Trailer != nil || req.Close ||
		req.Header.Get("Expect") != "" || req.Header.Get("Connection") != "" {
		if t.fallback == nil {
			closeBody(req)
			return nil, fmt.Errorf("h1: %s %s: not a request it sends, and no fallback", req.Method, req.URL.Redacted())
		}
		return t.fallback.RoundTrip(req)
	}
	if err := checkHeader(req.Header); err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.try(req, false)
	if err != nil && t.resendable(req, hasBody, err) {
		again := *req // a RoundTripper does not change the request
		if hasBody {
			again.Body, err = req.GetBody()
		}
		if err == nil {
			if resp, err = t.try(&again, true); err != nil {
				closeBody(&again)
			}
		}
	}
	if err != nil {
		closeBody(req)
		return nil, err
	}
	return resp, nil
}

// reusedError is a reused connection closed before any byte of the answer.
type reusedError struct {
	err   error
	wrote bool // a byte of the request was written
}

func (e *reusedError) Error() string {
	return "reused connection closed before the answer: " + e.err.Error()
}

func (e *reusedError) Unwrap() error { return e.err }

// resendable reports whether req, which failed with err, is to be sent once more on a
// new connection: see RoundTrip.
func (t *Transport) resendable(req *http.Request, hasBody bool, err error) bool {
	var re *reusedError
	if !errors.As(err, &re) || req.Context().Err() != nil || (hasBody && req.GetBody == nil) {
		return false
	}
	return !re.wrote || t.resend || replayable(req)
}

// replayable reports whether net/http's Transport would send req again after a failure
// on a reused connection: an idempotent method, or an idempotency key.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	_, xok := req.Header["X-Idempotency-Key"]
	return ok || xok
}

// try sends req on a pooled connection (a new one when fresh) and reads its answer's
// head.
func (t *Transport) try(req *http.Request, fresh bool) (*http.Response, error) {
	ctx := req.Context()
	c, err := t.conn(ctx, fresh)
	if err != nil {
		return nil, err
	}
	// Ending the request's context ends the connection's reads and writes at once.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if c.reused && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			t.closesEarly.Store(true)
			return nil, &reusedError{err: err, wrote: c.wrote}
		}
		return nil, err
	}
	c.wrote = false
	askGzip := t.gzip && req.Method != http.MethodHead && req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == ""
	if err := writeRequest(c.bw, req, t.host, askGzip); err != nil {
		return fail(err)
	}
	// The answer's first byte tells a connection the server closed (EOF, reset) from an
	// answer cut short (http.ReadResponse says unexpected EOF for both).
	if _, err := c.br.Peek(1); err != nil {
		return fail(err)
	}
	resp, err := readResponse(c.br, req)
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 {
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return fail(errors.New("101 switching protocols is not supported"))
		}
		resp, err = readResponse(c.br, req) // an informational answer: the real one follows
	}
	if err != nil {
		return fail(err)
	}
	keep := !resp.Close
	if resp.Body == http.NoBody {
		t.release(c, stop, keep)
		return resp, nil
	}
	resp.Body = &body{ReadCloser: resp.Body, ctx: ctx, t: t, c: c, stop: stop, keep: keep}
	if askGzip && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		resp.Body = &gzipBody{body: resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	return resp, nil
}

// aLongTimeAgo is a deadline in the past: it fails the reads and writes under way.
var aLongTimeAgo = time.Unix(1, 0)

// conn returns an idle connection its server has not closed, or a new one when there is
// none or fresh is set. A connection idle for less than checkAfter is not checked, unless
// the server was seen closing connections early (closesEarly).
func (t *Transport) conn(ctx context.Context, fresh bool) (*conn, error) {
	for !fresh {
		c := t.popIdle()
		if c == nil {
			break
		}
		if (time.Since(c.idle) < t.checkAfter && !t.closesEarly.Load()) || open(c.Conn) {
			return c, nil
		}
		c.Close()
	}
	nc, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, br: bufio.NewReaderSize(nc, 4<<10)}
	c.bw = bufio.NewWriterSize(c, 4<<10)
	return c, nil
}

// popIdle takes the most recently used idle connection from the pool, closing those
// idle for too long; nil when there is none.
func (t *Transport) popIdle() *conn {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.idle) > 0 {
		c := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if now.Sub(c.idle) < t.idleTimeout {
			return c
		}
		c.Close() // and the ones below it, idle longer, in the loop
	}
	return nil
}

// release ends a connection's request: back to the pool when keep is set, the request's
// context did not end meanwhile, and nothing more was sent; closed otherwise.
func (t *Transport) release(c *conn, stop func() bool, keep bool) {
	if !stop() || !keep || c.br.Buffered() > 0 {
		c.Close()
		return
	}
	c.reused = true
	c.idle = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	// The oldest idle connections go first when the pool is full or they idled too long.
	for len(t.idle) > 0 && (len(t.idle) >= t.maxIdle || c.idle.Sub(t.idle[0].idle) >= t.idleTimeout) {
		t.idle[0].Close()
		t.idle = t.idle[1:]
	}
	if t.closed {
		c.Close()
		return
	}
	t.idle = append(t.idle, c)
}

// CloseIdleConnections closes the idle connections, and those of the fallback
// transport; the Transport stays usable.
func (t *Transport) CloseIdleConnections() {
	t.closeIdle(false)
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// Close closes the idle connections, and those that go idle from now on: requests may
// still be sent, each on a connection of its own. The fallback transport is left alone.
func (t *Transport) Close() { t.closeIdle(true) }

func (t *Transport) closeIdle(closed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = t.closed || closed
	for _, c := range t.idle {
		c.Close()
	}
	t.idle = nil
}

// body is an answer's body read from its connection: the connection is released at its
// end, or closed when the body is closed before.
type body struct {
	io.ReadCloser // http.ReadResponse's body
	ctx           context.Context
	t             *Transport
	c             *conn
	stop          func() bool
	keep          bool
	done          atomic.Bool
}

// Read reads the body; a read cut off because the request's context ended returns the
// context's error.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if b.done.CompareAndSwap(false, true) {
			b.t.release(b.c, b.stop, b.keep)
		}
	case b.ctx.Err() != nil:
		err = b.ctx.Err()
	}
	return n, err
}

// Close closes the connection when the body was not read to its end (http.ReadResponse's
// body would read what is left first, which may be a stream that never ends).
func (b *body) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.stop()
		b.c.Close()
	}
	_ = b.ReadCloser.Close()
	return nil
}

// gzipBody decodes a gzip answer's body, opening the decoder at the first read. The
// decoder reads the body to its end (it takes concatenated gzip streams), so the
// connection is released when the decoded answer was read to its end.
type gzipBody struct {
	body io.ReadCloser
	zr   *gzip.Reader
	err  error // of opening the decoder
}

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.zr == nil && g.err == nil {
		g.zr, g.err = gzip.NewReader(g.body)
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.zr.Read(p)
}

// Close closes the body, and with it the connection unless it was read to its end.
func (g *gzipBody) Close() error { return g.body.Close() }

// writeRequest writes req's head and body to bw and flushes it. Host is the Host header
// when req has none of its own; askGzip adds Accept-Encoding: gzip.
func writeRequest(bw *bufio.Writer, req *http.Request, host string, askGzip bool) error {
	if req.Host != "" {
		host = req.Host
	}
	_, _ = bw.WriteString(req.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(req.URL.RequestURI())
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	if _, ok := req.Header["User-Agent"]; !ok {
		_, _ = bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	if askGzip {
		_, _ = bw.WriteString("Accept-Encoding: gzip\r\n")
	}
	for name, values := range req.Header {
		switch name {
		case "Host", "Content-Length":
			continue
		}
		for _, v := range values {
			_, _ = bw.WriteString(name)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	if req.Body != nil && req.Body != http.NoBody || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), req.ContentLength, 10))
		_, _ = bw.WriteString("\r\n")
	}
	_, _ = bw.WriteString("\r\n")
	if req.Body != nil && req.Body != http.NoBody {
		n, err := io.Copy(bw, req.Body)
		req.Body.Close()
		if err != nil {
			return err
		}
		if n != req.ContentLength {
			return fmt.Errorf("request body: %d bytes, Content-Length %d", n, req.ContentLength)
		}
	}
	return bw.Flush()
}

// checkHeader refuses header names and values that would break the request's head.
func checkHeader(h http.Header) error {
	for name, values := range h {
		if name == "" || !validText(name, true) {
			return fmt.Errorf("h1: invalid header name %q", name)
		}
		for _, v := range values {
			if !validText(v, false) {
				return fmt.Errorf("h1: invalid value of header %s", name)
			}
		}
	}
	return nil
}

// validText reports whether s has no control character but a value's tab, and, for a
// name, no space or separator.
func validText(s string, name bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\t' && !name:
		case c < ' ' || c == 0x7f:
			return false
		case name && (c == ' ' || c == ':' || c >= 0x80):
			return false
		}
	}
	return true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
