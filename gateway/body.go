package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Request bodies are read into a slice of their own, never a pooled buffer: the
// transport may still read a request body after RoundTrip returns (it writes bodies in
// a goroutine of its own), and only a plain *bytes.Reader lets it send the headers and
// a small body in one write (net/http flushes the headers first for any other reader),
// so nothing can tell when the slice is free. The garbage collector frees it.

// readBody reads a request body of at most limit bytes; size is its Content-Length (-1
// when unknown). A body up to preallocMax is read into a slice of its announced size; a
// larger one grows as it comes, so that a client announcing much and sending little
// costs little.
func readBody(body io.Reader, size, limit int64) ([]byte, *apiError) {
	if size > limit {
		return nil, tooLarge(limit)
	}
	if size >= 0 && size <= preallocMax {
		data := make([]byte, size)
		if _, err := io.ReadFull(body, data); err != nil {
			return nil, invalid("", "The request body could not be read.")
		}
		return data, nil
	}
	buf := getBuf()
	defer putBuf(buf)
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	switch {
	case n > limit:
		return nil, tooLarge(limit)
	case err != nil:
		return nil, invalid("", "The request body could not be read.")
	}
	return bytes.Clone(buf.Bytes()), nil
}

const preallocMax = 64 << 10

func tooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "request_too_large",
		msg: fmt.Sprintf("The request body is larger than %d bytes.", limit)}
}

// bodyOf is an upstream request's body: a *bytes.Reader, as net/http wants it to write
// the request in one go (see above).
func bodyOf(data []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(data)) }

// bufPool holds the buffers of answers and stream events.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

// putBuf returns b to the pool unless it grew past 1 MiB: one huge body should not be kept.
func putBuf(b *bytes.Buffer) {
	if b.Cap() > 1<<20 {
		return
	}
	b.Reset()
	bufPool.Put(b)
}
