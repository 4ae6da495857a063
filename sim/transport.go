package sim

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"syscall"
)

// Transport returns an http.RoundTripper that serves requests by calling the simulator
// directly: no sockets, no connection pool, nothing to close. It is meant for benchmarks
// and tests, where it sustains far more requests per second than a loopback connection.
// Requests behave as they would over a connection: a reset fails the round trip with an
// error wrapping syscall.ECONNRESET, a hang blocks until the request's context ends (its
// error is returned) or the server is closed (an error wrapping ECONNRESET), and a stream
// is read event by event as the simulator paces it.
func (s *Server) Transport() http.RoundTripper { return transport{s} }

type transport struct{ s *Server }

// Errors of the in-process transport. Both wrap syscall.ECONNRESET, as a real client's
// error would.
var (
	errReset       = fmt.Errorf("sim: read: %w", syscall.ECONNRESET)
	errClosedReset = fmt.Errorf("sim: server closed: %w", syscall.ECONNRESET)
)

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	s := t.s
	buf := s.getBuf()
	tooLarge, err := readBody(buf, req.Body)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	if err != nil {
		s.putBuf(buf)
		return nil, fmt.Errorf("sim: read request body: %w", err)
	}
	r := s.handle(&call{ctx: req.Context(), method: req.Method, path: req.URL.Path,
		auth: req.Header.Get("Authorization"), body: buf.Bytes(), tooLarge: tooLarge})
	s.putBuf(buf) // handle keeps nothing of the body
	switch r.fail {
	case failReset:
		return nil, errReset
	case failClosed:
		return nil, errClosedReset
	case failGone:
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("sim: request abandoned")
	}
	resp := &http.Response{
		Status:     statusLine(r.status),
		StatusCode: r.status,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 4),
		Request:    req,
	}
	r.setHeaders(resp.Header)
	if r.drop {
		resp.ContentLength = -1
		resp.Body = droppedBody(&r)
		return resp, nil
	}
	if r.stream != nil {
		resp.ContentLength = -1
		resp.Body = &streamBody{s: s, ctx: req.Context(), st: r.stream}
	} else {
		resp.ContentLength = int64(len(r.body))
		b := &bytesBody{}
		b.Reset(r.body)
		resp.Body = b
	}
	return resp, nil
}

// bytesBody is a complete response body.
type bytesBody struct{ bytes.Reader }

func (bytesBody) Close() error { return nil }

// statusLine is an HTTP status line such as "200 OK".
func statusLine(code int) string {
	if code == http.StatusOK {
		return "200 OK"
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}
