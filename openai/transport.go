package openai

import (
	"net"
	"net/http"
	"time"

	"github.com/sluice-llm/sluice/internal/h1"
)

// Transport timeouts. There is deliberately no response-header timeout: a model may think
// for minutes before its first byte, and the caller's per-attempt context bounds the wait.
const (
	dialTimeout         = 30 * time.Second
	tcpKeepAlive        = 30 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	// idleConnTimeout is shorter than the common 60 s server-side keep-alive, so that the
	// client, not the server, closes an idle connection: a request written onto a
	// connection the server is closing fails with no answer.
	idleConnTimeout       = 45 * time.Second
	expectContinueTimeout = time.Second
)

// NewTransport returns an HTTP transport tuned for many concurrent requests to one host:
// it keeps up to concurrency idle connections per host (so a steady stream of requests
// never reconnects), puts no cap on connections per host, negotiates HTTP/2 over TLS when
// the server offers it, and accepts gzip answers. It dials with a 30 s timeout, gives TLS
// handshakes 10 s, closes connections idle for 45 s and has no response-header timeout:
// bound each request with its context. Like http.DefaultTransport it uses the proxy named
// by the HTTPS_PROXY, HTTP_PROXY and NO_PROXY environment variables. A concurrency below 1
// counts as 1.
func NewTransport(concurrency int) *http.Transport {
	concurrency = max(concurrency, 1)
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(100, concurrency),
		MaxIdleConnsPerHost:   concurrency,
		MaxConnsPerHost:       0,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		ResponseHeaderTimeout: 0,
		DisableCompression:    false,
	}
}

// NewTransportFor returns the transport for requests to the upstream at baseURL. For a
// plain-HTTP base URL reached without a proxy (HTTP_PROXY and NO_PROXY are honoured, as
// NewTransport honours them), it is sluice's own HTTP/1.1 client (internal/h1): a pool
// of up to concurrency idle keep-alive connections, each request written and its answer
// read on the caller's goroutine, with none of net/http's two goroutines per connection.
// It dials with a 30 s timeout, closes connections idle for 30 s, does not send on an
// idle connection its server closed, closes (never reuses) a connection whose answer was
// not read to its end or whose request's context ended, and sends a POST a second time
// only when nothing of it was written. Like NewTransport, it asks for gzip answers and
// decodes them. Every other upstream (https, a proxied one) gets NewTransport(concurrency),
// and so does a request to another host.
func NewTransportFor(baseURL string, concurrency int) http.RoundTripper {
	concurrency = max(concurrency, 1)
	fallback := NewTransport(concurrency)
	if t, ok := h1.New(baseURL, h1.Config{MaxIdle: concurrency, Fallback: fallback, Gzip: true}); ok {
		return t
	}
	return fallback
}
