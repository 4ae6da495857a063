package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice"
)

// DefaultMaxBodyBytes is the default cap on the size of one answer body (after any
// transparent gzip decompression).
const DefaultMaxBodyBytes int64 = 64 << 20

// defaultConcurrency is the connection pool size of the transport New builds when Config
// has no HTTPClient.
const defaultConcurrency = 64

// redactedKey replaces the API key wherever an upstream echoed it back.
const redactedKey = "[redacted]"

// minRedactLen is the shortest API key that is searched for and redacted in answers:
// shorter "keys" (such as "EMPTY" for a local vLLM) would match ordinary text.
const minRedactLen = 8

// Config configures a Client. Only BaseURL is required.
type Config struct {
	// BaseURL is the upstream's base URL, such as https://api.openai.com/v1; a trailing
	// slash is ignored. A request is sent to BaseURL followed by the request's URL with
	// its leading "/v1" removed, so both "https://api.openai.com/v1" and a gateway's
	// "https://host/api/openai" work with request URLs such as "/v1/chat/completions".
	// A query string on BaseURL (Azure's api-version, say) is kept on every request.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer APIKey"; with no key, no Authorization
	// header is sent. The key never appears in an error, a Response or a string form of
	// the Config or the Client: where an upstream echoes it back, it is redacted.
	APIKey string
	// HTTPClient sends the requests. Nil means a client with
	// NewTransportFor(BaseURL, 64) and no overall timeout: bound each request with its
	// context.
	HTTPClient *http.Client
	// UserAgent is sent as the User-Agent header when not empty.
	UserAgent string
	// Header holds extra headers sent with every request, such as OpenAI-Organization or
	// OpenAI-Project. It may override User-Agent, but not Content-Type or the
	// Authorization header set from APIKey.
	Header http.Header
	// MaxBodyBytes caps the size of an answer body; an answer over it is an
	// *sluice.UpstreamError with Code sluice.CodeInvalidResponse. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Stream sends Chat Completions, Completions and Responses requests with
	// "stream":true added when their body has no "stream" member (a body's own
	// "stream": false is kept), so that the time to first token is measured. The answer
	// is assembled into the object a request without streaming gets.
	Stream bool
	// StreamIdleTimeout cuts off a streamed answer that sends no byte for this long,
	// counted from its headers, with an *sluice.UpstreamError with Code
	// sluice.CodeTimeout; a long answer that keeps sending is not cut off (the
	// whole-request timeout is the context's). Set it above the longest time to first
	// token expected. Zero means none.
	StreamIdleTimeout time.Duration
}

// String describes the Config without its API key.
func (c Config) String() string {
	key := "none"
	if c.APIKey != "" {
		key = redactedKey
	}
	return fmt.Sprintf("openai.Config{BaseURL: %q, APIKey: %s, UserAgent: %q}", redactBaseURL(c.BaseURL), key, c.UserAgent)
}

// GoString is String, so that %#v does not print the API key either.
func (c Config) GoString() string { return c.String() }

// Client sends requests to one OpenAI-compatible API. It implements sluice.Upstream and
// sluice.ModelLister, and is safe for concurrent use.
type Client struct {
	hc        *http.Client
	base      string // scheme://host/path, no trailing slash, no query
	query     string // the base URL's raw query, "" when none
	display   string // base for messages: no password, no query
	header    http.Header
	key       []byte // for redaction, nil when shorter than minRedactLen
	keyString string // the same, as a string
	maxBody   int64
	endpoints map[string]endpoint // the endpoints sluice sends, joined once
	// noStreamOptions is set once the upstream refused a stream_options sluice added.
	noStreamOptions atomic.Bool
	forceStream     bool             // Config.Stream
	idle            time.Duration    // Config.StreamIdleTimeout
	now             func() time.Time // the clock for Retry-After dates; tests replace it
}

var (
	_ sluice.Upstream    = (*Client)(nil)
	_ sluice.ModelLister = (*Client)(nil)
)

// endpoint is one request URL: where to send, and how to name it in messages.
type endpoint struct {
	url     string
	display string // without query or credentials
}

// New returns a Client for cfg. It fails when BaseURL is not an absolute http or https
// URL with a host, or when MaxBodyBytes is negative.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("openai: base URL must be an http or https URL with a host, got %q", redactBaseURL(cfg.BaseURL))
	}
	if cfg.MaxBodyBytes < 0 || cfg.StreamIdleTimeout < 0 {
		return nil, fmt.Errorf("openai: MaxBodyBytes and StreamIdleTimeout must not be negative, got %d and %v", cfg.MaxBodyBytes, cfg.StreamIdleTimeout)
	}
	c := &Client{
		hc:          cfg.HTTPClient,
		query:       u.RawQuery,
		header:      buildHeader(cfg),
		maxBody:     cfg.MaxBodyBytes,
		now:         time.Now,
		forceStream: cfg.Stream,
		idle:        cfg.StreamIdleTimeout,
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: NewTransportFor(strings.TrimSpace(cfg.BaseURL), defaultConcurrency)}
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	if len(cfg.APIKey) >= minRedactLen {
		c.key, c.keyString = []byte(cfg.APIKey), cfg.APIKey
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	c.base = strings.TrimRight(u.String(), "/")
	u.User = nil
	c.display = strings.TrimRight(u.String(), "/")
	c.endpoints = make(map[string]endpoint, len(sluice.Endpoints)+1)
	for _, p := range append([]string{modelsPath}, sluice.Endpoints...) {
		c.endpoints[p] = c.join(p)
	}
	return c, nil
}

// buildHeader is the header set every request carries. Each value slice has length equal
// to capacity, so a request's copy can be appended to without touching the shared one.
func buildHeader(cfg Config) http.Header {
	h := http.Header{}
	if cfg.UserAgent != "" {
		h["User-Agent"] = []string{cfg.UserAgent}
	}
	for k, vs := range cfg.Header {
		if len(vs) > 0 {
			h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)[:len(vs):len(vs)]
		}
	}
	h["Content-Type"] = []string{"application/json"}
	if cfg.APIKey != "" {
		h["Authorization"] = []string{"Bearer " + cfg.APIKey}
	}
	return h
}

// BaseURL returns the base URL requests are sent to, without a trailing slash, a query
// string or a password, for messages.
func (c *Client) BaseURL() string { return c.display }

// String describes the Client without its API key.
func (c *Client) String() string { return "openai.Client(" + c.display + ")" }

// GoString is String, so that %#v does not print the API key either.
func (c *Client) GoString() string { return c.String() }

// CloseIdleConnections closes the idle connections of the Client's HTTP client.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// endpoint returns where to send a request whose URL is path.
func (c *Client) endpoint(path string) (endpoint, error) {
	if ep, ok := c.endpoints[path]; ok {
		return ep, nil
	}
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return endpoint{}, fmt.Errorf("request url %q is not a path such as %s", path, sluice.EndpointChatCompletions)
	}
	return c.join(path), nil
}

// join applies the URL rule: the base URL, then path without a leading "/v1", then the
// base URL's query merged with path's.
func (c *Client) join(path string) endpoint {
	path, query, _ := strings.Cut(path, "?")
	if path == "/v1" || strings.HasPrefix(path, "/v1/") {
		path = path[len("/v1"):]
	}
	ep := endpoint{url: c.base + path, display: c.display + path}
	switch {
	case c.query != "" && query != "":
		ep.url += "?" + c.query + "&" + query
	case c.query != "":
		ep.url += "?" + c.query
	case query != "":
		ep.url += "?" + query
	}
	return ep
}

// Do sends req once as a POST of req.Body, to the request's endpoint (see
// Config.BaseURL for the rule; req.Method is not consulted: the Batch API only has POST).
// It follows the sluice.Upstream contract:
//
//   - a 2xx answer with a JSON body returns the Response and a nil error; a streamed
//     (text/event-stream) answer is assembled into the object a non-streamed request
//     would have returned;
//   - a 2xx answer whose body is empty, not JSON, too large, or a stream cut short returns
//     the Response and an *sluice.UpstreamError with Code sluice.CodeInvalidResponse;
//   - an error status returns the Response, whose Body is the upstream's JSON error (or a
//     JSON error object describing a non-JSON answer), and an *sluice.UpstreamError;
//   - a streamed Chat Completions or Completions request that does not ask for usage is
//     sent with "stream_options":{"include_usage":true} added (only that member: the
//     rest of the body is sent as it is); an upstream that answers 400 naming
//     stream_options gets the request again as it was, and is never asked again;
//   - a 2xx Chat Completions or Completions answer without usage gets its usage counted
//     by sluice (the prompt estimated from the request, the answer's text counted with
//     the model's tokenizer), and Response.UsageCounted set;
//   - no answer (refused, reset, DNS, TLS, a body cut off) returns a nil Response and an
//     *sluice.UpstreamError with StatusCode 0 and Code sluice.CodeConnection, or
//     sluice.CodeTimeout when ctx's deadline passed; when ctx is cancelled, the error
//     wraps context.Canceled.
func (c *Client) Do(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	if req == nil {
		return nil, errors.New("openai: nil request")
	}
	ep, err := c.endpoint(req.URL)
	if err != nil {
		return nil, &sluice.UpstreamError{Code: sluice.CodeInvalidRequest, Message: err.Error(), Err: err}
	}
	plain := req.Body // the body without stream_options
	if c.forceStream && streams(req.URL) {
		plain = withStream(plain)
	}
	body, added := plain, false
	if asksUsage(req.URL) && !c.noStreamOptions.Load() {
		body, added = withStreamUsage(plain)
	}
	resp, err := c.send(ctx, ep, body)
	if added && rejectsStreamOptions(resp, err) {
		c.noStreamOptions.Store(true) // this upstream does not take stream_options: stop asking
		resp, err = c.send(ctx, ep, plain)
	}
	if err != nil {
		return resp, err
	}
	countUsage(req, resp)
	return resp, nil
}

// send POSTs body to ep once; see Do.
func (c *Client) send(ctx context.Context, ep endpoint, body []byte) (*sluice.Response, error) {
	var cancel context.CancelCauseFunc // cuts off an idle stream
	if c.idle > 0 {
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
	}
	hreq, err := c.newRequest(ctx, http.MethodPost, ep.url, body)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message repeats the full URL, query and all
		}
		return nil, &sluice.UpstreamError{Code: sluice.CodeInvalidRequest, Err: err,
			Message: c.redactString(fmt.Sprintf("build request for %s: %v", ep.display, err))}
	}
	start := time.Now()
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, c.noAnswer(ctx, "POST "+ep.display, err, start)
	}
	defer hresp.Body.Close()
	if hresp.StatusCode/100 == 2 && isEventStream(header(hresp.Header, "Content-Type")) {
		return c.receiveStream(ctx, ep, hresp, start, cancel)
	}
	raw, err := readBody(hresp, c.maxBody)
	if err != nil && !errors.Is(err, errTooLarge) {
		raw.release()
		return nil, c.noAnswer(ctx, "read answer from "+ep.display, err, start)
	}
	resp := &sluice.Response{
		StatusCode: hresp.StatusCode,
		RequestID:  c.redactString(requestID(hresp.Header)),
		Limits:     parseRateLimits(hresp.Header, c.now()),
		Latency:    time.Since(start),
	}
	var ue *sluice.UpstreamError
	if err != nil { // errTooLarge
		ue = c.tooLarge(resp, hresp.Header)
	} else {
		ue = c.interpret(resp, hresp.Header, &raw)
	}
	raw.release()
	if ue != nil {
		return resp, ue
	}
	return resp, nil
}

// newRequest builds an HTTP request with the Client's headers. The body reader is a
// bytes.Reader, so the request can be replayed by the transport.
func (c *Client) newRequest(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	var hreq *http.Request
	var err error
	if body == nil {
		hreq, err = http.NewRequestWithContext(ctx, method, u, nil)
	} else {
		hreq, err = http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	}
	if err != nil {
		return nil, err
	}
	for k, v := range c.header { // the value slices are shared and read-only (len == cap)
		if body == nil && k == "Content-Type" {
			continue
		}
		hreq.Header[k] = v
	}
	return hreq, nil
}

// redact replaces the API key in b. It returns b itself when the key is absent (the
// common case), and otherwise a fresh slice with fresh set.
func (c *Client) redact(b []byte) (out []byte, fresh bool) {
	if c.key == nil || !bytes.Contains(b, c.key) {
		return b, false
	}
	return bytes.ReplaceAll(b, c.key, []byte(redactedKey)), true
}

// redactString is redact for a string.
func (c *Client) redactString(s string) string {
	if c.keyString == "" || !strings.Contains(s, c.keyString) {
		return s
	}
	return strings.ReplaceAll(s, c.keyString, redactedKey)
}

// redactBaseURL strips the password and query from a base URL for messages; an
// unparsable one is not shown at all.
func redactBaseURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery = nil, "", false
	return u.String()
}
