package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// readResponse reads an answer's head from br, as http.ReadResponse does: with readHead
// when it can, which gives the same answer for less.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if resp, ok := readHead(br, req); ok {
		return resp, nil
	}
	return http.ReadResponse(br, req)
}

// readHead reads the head of an answer to req when br holds all of it and it has the
// plain shape of nearly every answer: an HTTP/1.1 status line of a final status with a
// body (2xx to 5xx but 204 and 304), to any request but HEAD; header lines of a name of
// letters, digits and dashes, a colon and a value, each ending in CRLF, without
// continuation lines; one Content-Length; no Transfer-Encoding, Connection, Trailer or
// Pragma. It returns what http.ReadResponse would, the body read from br, without its
// textproto reader and its strings and slices per header line: the head is copied to
// one string that the names and values are cut from. For any other answer it returns
// false and reads nothing, so that http.ReadResponse reads it.
func readHead(br *bufio.Reader, req *http.Request) (*http.Response, bool) {
	if req.Method == http.MethodHead {
		return nil, false
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false
	}
	head := string(buf[:end+2]) // every line with its CRLF
	status, rest, _ := strings.Cut(head, "\r\n")
	code, ok := statusCode(status)
	if !ok {
		return nil, false
	}
	lines := strings.Count(rest, "\r\n")
	h := make(http.Header, lines)
	values := make([]string, lines) // one array for the values: names are rarely repeated
	length := int64(-1)
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok || !plainName(name) || !plainValue(value) {
			return nil, false
		}
		name = http.CanonicalHeaderKey(name)
		value = strings.Trim(value, " \t")
		switch name {
		case "Transfer-Encoding", "Connection", "Trailer", "Pragma":
			return nil, false
		case "Content-Length":
			if length >= 0 {
				return nil, false
			}
			if length = contentLength(value); length < 0 {
				return nil, false
			}
		}
		if vv := h[name]; vv != nil {
			h[name] = append(vv, value)
		} else {
			vv, values = values[:1:1], values[1:]
			vv[0] = value
			h[name] = vv
		}
	}
	if length < 0 {
		return nil, false
	}
	_, _ = br.Discard(end + 4)
	resp := &http.Response{
		Status: status[len("HTTP/1.1 "):], StatusCode: code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length, Request: req,
		Body: http.NoBody,
	}
	if length > 0 {
		resp.Body = &fixedBody{br: br, left: length}
	}
	return resp, true
}

// statusCode reads the status line of a final HTTP/1.1 answer with a body.
func statusCode(line string) (int, bool) {
	const proto = "HTTP/1.1 "
	if len(line) < len(proto)+3 || line[:len(proto)] != proto || len(line) > len(proto)+3 && line[len(proto)+3] != ' ' ||
		strings.ContainsAny(line, "\r\n") {
		return 0, false
	}
	code := 0
	for _, c := range []byte(line[len(proto) : len(proto)+3]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return 0, false
	}
	return code, true
}

// plainName reports whether a header name is of letters, digits and dashes only.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// plainValue reports whether a header value has no byte that textproto refuses or that
// ends a line: no control character but the tab.
func plainValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// contentLength parses a Content-Length of up to 18 digits, -1 for any other.
func contentLength(v string) int64 {
	if v == "" || len(v) > 18 {
		return -1
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return -1
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// fixedBody is a body of a known length read from br, as http.ReadResponse's body reads
// one: its last bytes come with io.EOF, an end of br before them is
// io.ErrUnexpectedEOF, and a read after Close is http.ErrBodyReadAfterClose.
type fixedBody struct {
	br     *bufio.Reader
	left   int64 // bytes not read yet
	eof    bool  // the end was reached, or br ended
	closed atomic.Bool
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof || b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
		if b.left > 0 {
			err = io.ErrUnexpectedEOF
		}
	case err == nil && n > 0 && b.left == 0:
		b.eof = true
		err = io.EOF
	}
	return n, err
}

// Close marks the body closed; what is left of it is not read (the connection's owner
// closes the connection when the body was not read to its end).
func (b *fixedBody) Close() error {
	b.closed.Store(true)
	return nil
}
