package gateway

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// scope holds the pooled buffers of one proxied request. The transport may read a
// request body after RoundTrip returns (it writes bodies in a goroutine of its own), so
// the buffers go back to the pool only when every body reader made from them has been
// read to its end or closed; otherwise they are left to the garbage collector.
type scope struct {
	bufs    []*bytes.Buffer
	mu      sync.Mutex
	readers []*bodyReader
}

// buf returns a pooled buffer that lives as long as the scope.
func (s *scope) buf() *bytes.Buffer {
	b := getBuf()
	s.bufs = append(s.bufs, b)
	return b
}

// reader returns a request body reading data.
func (s *scope) reader(data []byte) *bodyReader {
	r := &bodyReader{}
	r.Reset(data)
	s.mu.Lock()
	s.readers = append(s.readers, r)
	s.mu.Unlock()
	return r
}

// end returns the buffers to the pool when nothing reads them any more.
func (s *scope) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.readers {
		if !r.finished.Load() {
			return
		}
	}
	for _, b := range s.bufs {
		putBuf(b)
	}
	s.bufs = nil
}

// bodyReader is a request body that says when the transport is done with it.
type bodyReader struct {
	bytes.Reader
	finished atomic.Bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if errors.Is(err, io.EOF) {
		r.finished.Store(true)
	}
	return n, err
}

func (r *bodyReader) Close() error {
	r.finished.Store(true)
	return nil
}
