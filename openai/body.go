package openai

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
)

// errTooLarge means an answer body was larger than the Client's MaxBodyBytes.
var errTooLarge = errors.New("answer body too large")

// maxPooled is the largest buffer kept in bufPool: a rare huge answer should not pin its
// memory for the life of the process.
const maxPooled = 1 << 20

// maxExact is the largest Content-Length read into a slice allocated before the body
// arrives; a larger claim grows a buffer as bytes come, so that a lying header cannot
// make the client allocate MaxBodyBytes per request up front.
const maxExact = 1 << 20

// bufPool holds buffers for answers of unknown length (chunked, or decompressed).
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// rawBody is an answer body as read. data is owned by the caller when buf is nil;
// otherwise it aliases the pooled buf and is valid until release.
type rawBody struct {
	data []byte
	buf  *bytes.Buffer
}

// release returns the pooled buffer, if any. data must not be used afterwards.
func (b *rawBody) release() {
	if b.buf != nil && b.buf.Cap() <= maxPooled {
		b.buf.Reset()
		bufPool.Put(b.buf)
	}
	b.buf, b.data = nil, nil
}

// owned returns data as a slice the caller may keep.
func (b *rawBody) owned() []byte {
	if b.buf == nil {
		return b.data
	}
	return bytes.Clone(b.data)
}

// readBody reads resp's whole body, up to limit bytes. With a known, modest
// Content-Length it reads into one exactly sized slice; otherwise into a pooled buffer. A body over limit
// is errTooLarge; any other error means the body could not be read to its end.
func readBody(resp *http.Response, limit int64) (rawBody, error) {
	n := resp.ContentLength
	if n > limit {
		return rawBody{}, errTooLarge
	}
	if n >= 0 && n <= maxExact {
		data := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			return rawBody{}, err
		}
		// The body reader enforces Content-Length, so this only confirms the end.
		var one [1]byte
		if m, err := resp.Body.Read(one[:]); m > 0 || (err != nil && err != io.EOF) {
			if m > 0 {
				return rawBody{}, errTooLarge
			}
			return rawBody{}, err
		}
		return rawBody{data: data}, nil
	}
	buf := bufPool.Get().(*bytes.Buffer)
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	b := rawBody{data: buf.Bytes(), buf: buf}
	if err != nil {
		b.release()
		return rawBody{}, err
	}
	if int64(len(b.data)) > limit {
		b.release()
		return rawBody{}, errTooLarge
	}
	return b, nil
}
