package http

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Defaults of Limits.
const (
	// DefaultMaxConns is the most connections served at once.
	DefaultMaxConns = 4096
	// DefaultMaxConnsPerIP is the most connections served at once from one client address.
	DefaultMaxConnsPerIP = 256
	// DefaultReadHeaderTimeout is how long a client has to send a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a kept-alive connection may wait for its next request.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMinRate is the slowest a request body may arrive, or a response be taken,
	// on average, after DefaultRateGrace: 16 KiB/s (a 200 MB upload may take 3.5 hours).
	DefaultMinRate = 16 << 10
	// DefaultRateGrace is the time a body or response has before DefaultMinRate applies.
	DefaultRateGrace = 30 * time.Second

	refusers = 64 // connections being refused at once; past it they are closed at once
)

// Limits bound what clients may hold of a server: connections, and the time they take.
// The zero value of each field means its default; a negative MaxConns or MaxConnsPerIP
// means no cap.
//
// There is no flat read or write timeout, which would cut off large uploads and
// downloads: instead a request body must arrive, and a response be taken, at MinRate
// bytes a second on average after RateGrace (a client that stalls is cut off then), and
// each read or write of them must make progress within IdleTimeout. A client is cut off
// up to a quarter of that time late: see paced.
type Limits struct {
	MaxConns          int
	MaxConnsPerIP     int
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MinRate           int64 // bytes per second
	RateGrace         time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxConns == 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerIP == 0 {
		l.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MinRate <= 0 {
		l.MinRate = DefaultMinRate
	}
	if l.RateGrace <= 0 {
		l.RateGrace = DefaultRateGrace
	}
	return l
}

// NewHTTPServer returns an http.Server for h with l's timeouts (h's requests read and
// write under l's rate deadlines). Serve it on Listen's listener; errorLog receives the
// http package's own notices.
func NewHTTPServer(h http.Handler, l Limits, errorLog *log.Logger) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           paced(h, l),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		ErrorLog:          errorLog,
	}
}

// errTooSlow is a request body that did not arrive at the minimum rate.
var errTooSlow = fmt.Errorf("request body: too slow: %w", os.ErrDeadlineExceeded)

// paced serves h with deadlines on each read of the request body and each write of the
// response: start + RateGrace + bytes/MinRate, and at most IdleTimeout away. Setting a
// deadline costs (a timer of the runtime's poller is moved), so a deadline is set a
// quarter of its time later than that and is set again only once the exact one passes
// it: a client is cut off at most a quarter of its time (and one read or write) late,
// never early.
func paced(h http.Handler, l Limits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		start := time.Now()
		// The server sets no write deadline of its own (there is no WriteTimeout): clear the
		// one the previous request on the connection left.
		_ = rc.SetWriteDeadline(time.Time{})
		pw := &pacedWriter{ResponseWriter: w, rc: rc, pace: pace{l: l}}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &pacedBody{ReadCloser: r.Body, rc: rc, pace: pace{l: l, start: start}}
		}
		h.ServeHTTP(pw, r)
	})
}

// deadline is when a transfer of n bytes so far, then m more, started at start, must be
// done, at now.
func (l Limits) deadline(now, start time.Time, n, m int64) time.Time {
	byRate := start.Add(l.RateGrace + time.Duration(float64(n+m)/float64(l.MinRate)*float64(time.Second)))
	idle := now.Add(l.IdleTimeout)
	if idle.Before(byRate) {
		return idle
	}
	return byRate
}

// pace is one direction of a request's transfer: its bytes so far and the deadline set.
type pace struct {
	l     Limits
	start time.Time
	n     int64
	set   time.Time // the deadline set last; zero: none
}

// next returns the deadline to set before m more bytes, and false when the one set
// still holds: it is no earlier than the exact deadline (which only moves later).
func (p *pace) next(m int64) (time.Time, bool) {
	now := time.Now()
	exact := p.l.deadline(now, p.start, p.n, m)
	if !p.set.IsZero() && !exact.After(p.set) {
		return p.set, false
	}
	p.set = exact.Add(exact.Sub(now) / 4)
	return p.set, true
}

type pacedBody struct {
	io.ReadCloser
	rc *http.ResponseController
	pace
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if d, ok := b.next(int64(len(p))); ok {
		_ = b.rc.SetReadDeadline(d) // a closed conn fails the read
	}
	k, err := b.ReadCloser.Read(p)
	b.n += int64(k)
	switch {
	case errors.Is(err, io.EOF):
		// The server reads on in the background, to see the client go away: no deadline
		// then, or it would cancel the request's context.
		_ = b.rc.SetReadDeadline(time.Time{})
		b.set = time.Time{}
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errTooSlow
	}
	return k, err
}

type pacedWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	pace
}

func (w *pacedWriter) Write(p []byte) (int, error) {
	if w.start.IsZero() { // the response's clock starts at its first byte
		w.start = time.Now()
	}
	if d, ok := w.next(int64(len(p))); ok {
		_ = w.rc.SetWriteDeadline(d) // a closed conn fails the write
	}
	k, err := w.ResponseWriter.Write(p)
	w.n += int64(k)
	return k, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *pacedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes the response, when the writer can.
func (w *pacedWriter) Flush() { _ = w.rc.Flush() }

// Listen returns ln capped at l's connections: past MaxConns in all, or MaxConnsPerIP
// from one address, a new connection is answered 503 Service Unavailable and closed.
// Connections count until they are closed.
func Listen(ln net.Listener, l Limits) net.Listener {
	l = l.withDefaults()
	return &capListener{Listener: ln, l: l, perIP: map[string]int{}, refusing: make(chan struct{}, refusers)}
}

type capListener struct {
	net.Listener
	l Limits

	mu       sync.Mutex
	total    int
	perIP    map[string]int
	refusing chan struct{}  // one token per connection being refused
	wg       sync.WaitGroup // one per refusal under way
}

// Close closes the listener and waits for the refusals under way (a second at most).
func (cl *capListener) Close() error {
	err := cl.Listener.Close()
	cl.wg.Wait()
	return err
}

// refusal is the whole answer to a connection over the caps.
var refusal = func() string {
	body := `{"error":{"message":"Too many connections: try again later.","type":"server_error","param":null,"code":"too_many_connections"}}`
	return fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

func (cl *capListener) Accept() (net.Conn, error) {
	for {
		c, err := cl.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c.RemoteAddr())
		cl.mu.Lock()
		over := cl.l.MaxConns > 0 && cl.total >= cl.l.MaxConns || cl.l.MaxConnsPerIP > 0 && cl.perIP[ip] >= cl.l.MaxConnsPerIP
		if !over {
			cl.total++
			cl.perIP[ip]++
		}
		cl.mu.Unlock()
		if over {
			cl.refuse(c)
			continue
		}
		return &capConn{Conn: c, release: func() { cl.release(ip) }}, nil
	}
}

func (cl *capListener) release(ip string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.total--
	if cl.perIP[ip]--; cl.perIP[ip] <= 0 {
		delete(cl.perIP, ip)
	}
}

// refuse answers c 503 and closes it. It reads what the client sent for up to a second
// first, so that closing does not reset the connection before the client reads the
// answer; past refusers connections being refused, it closes c at once.
func (cl *capListener) refuse(c net.Conn) {
	select {
	case cl.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	cl.wg.Go(func() {
		defer func() { <-cl.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(c, refusal); err != nil {
			return
		}
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	})
}

// clientIP is the host part of a remote address.
func clientIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

type capConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
