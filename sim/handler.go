package sim

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"net/http"
	pathpkg "path"
	"strconv"
	"strings"
	"time"
)

// maxBody is the largest request body read; larger ones are answered 413.
const maxBody = 64 << 20

// call is one HTTP request as the simulator sees it, whichever way it came in.
type call struct {
	ctx                context.Context
	method, path, auth string
	body               []byte
	tooLarge           bool
}

// failure is an answer that is not an HTTP response.
type failure int

const (
	failNone   failure = iota
	failReset          // fault injection: drop the connection
	failClosed         // a hung request released by Close: drop the connection
	failGone           // the client gave up: nobody to answer
)

// reply is the simulator's answer to a call, written out by ServeHTTP or Transport.
type reply struct {
	fail   failure
	status int
	body   []byte  // a JSON answer, unless stream is set
	stream *stream // a text/event-stream answer
	drop   bool    // send half of the answer, then drop the connection (Quirks.Drop)
	id     uint64  // the x-request-id
	// retryAfter, when positive, is sent as retry-after and retry-after-ms.
	retryAfter time.Duration
	// hasLimits says whether to send the x-ratelimit-* headers for req and tok.
	hasLimits bool
	req, tok  limitState
}

// endpoint is what a request asks for.
type endpoint int

const (
	epNone endpoint = iota
	epChat
	epCompletions
	epEmbeddings
	epResponses
	epModels
	epModel
)

// route maps a method and path to an endpoint. A switch rather than a ServeMux: the
// in-process transport calls the simulator without one, and every miss must be answered
// in OpenAI's error shape.
func route(method, path string) endpoint {
	if strings.Contains(path, "//") { // a base URL with a trailing slash
		path = pathpkg.Clean(path)
	}
	switch {
	case method == http.MethodPost:
		switch path {
		case "/v1/chat/completions":
			return epChat
		case "/v1/completions":
			return epCompletions
		case "/v1/embeddings":
			return epEmbeddings
		case "/v1/responses":
			return epResponses
		}
	case method == http.MethodGet && path == "/v1/models":
		return epModels
	case method == http.MethodGet && strings.HasPrefix(path, "/v1/models/") && len(path) > len("/v1/models/"):
		return epModel
	}
	return epNone
}

// handle answers a call. See the package documentation for the order of its decisions.
func (s *Server) handle(c *call) reply {
	s.stats.requests.Add(1)
	n := s.seq.Add(1)
	ep := route(c.method, c.path)
	if ep == epNone {
		s.stats.notFound.Add(1)
		return s.errorReply(n, invalidURL(c.method, c.path))
	}
	if !s.authorized(c.auth) {
		s.stats.unauthorized.Add(1)
		return s.errorReply(n, invalidAPIKey(c.auth != ""))
	}
	switch ep {
	case epModels:
		s.stats.ok.Add(1)
		return reply{status: http.StatusOK, id: n, body: s.appendModelList(nil)}
	case epModel:
		model := strings.TrimPrefix(c.path, "/v1/models/")
		if !s.serves(model) {
			s.stats.notFound.Add(1)
			return s.errorReply(n, modelNotFound(model))
		}
		s.stats.ok.Add(1)
		return reply{status: http.StatusOK, id: n, body: s.appendModel(nil, model)}
	}
	if c.tooLarge {
		s.stats.badRequests.Add(1)
		e := invalidRequest("", "request_too_large", "The request body is larger than %d bytes.", maxBody)
		e.status = http.StatusRequestEntityTooLarge
		return s.errorReply(n, e)
	}
	return s.generate(c, ep, n)
}

// authorized checks the Authorization header when an API key is configured.
func (s *Server) authorized(auth string) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	key, ok := strings.CutPrefix(auth, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) == 1
}

// generate answers a request to a generation endpoint: fault, decoding, model, limits,
// answer, latency, truncation.
func (s *Server) generate(c *call, ep endpoint, n uint64) reply {
	f := s.fault(n)
	switch f {
	case faultReset:
		s.stats.resets.Add(1)
		return reply{fail: failReset}
	case faultHang:
		s.stats.hangs.Add(1)
		return s.hang(c.ctx)
	case faultError5xx:
		s.stats.errors5xx.Add(1)
		return s.withLimits(s.errorReply(n, serverError(s.errorStatus(n))))
	}
	if r, ok := s.quirkBefore(c, n); ok {
		return s.withLimits(r)
	}
	j := job{n: n}
	if e := j.decode(ep, c.body); e != nil {
		s.stats.badRequests.Add(1)
		return s.withLimits(s.errorReply(n, e))
	}
	if !s.serves(j.model) {
		s.stats.notFound.Add(1)
		return s.withLimits(s.errorReply(n, modelNotFound(j.model)))
	}
	if s.random429(n) {
		return s.overloaded(n)
	}
	s.quirkJob(&j)
	r := reply{status: http.StatusOK, id: n}
	if s.limits != nil {
		a := s.limits.admit(s.now(), j.reserve())
		r.hasLimits, r.req, r.tok = !s.cfg.NoLimitHeaders, a.req, a.tokens
		if !a.ok {
			return s.throttle(r, &j, &a)
		}
	}
	if f == faultStall && j.stream { // a request that does not stream is answered as usual
		r = s.answer(c.ctx, r, &j, false)
		r.stream.stall()
		s.stats.stalled.Add(1)
		return r
	}
	return s.quirkAfter(s.answer(c.ctx, r, &j, f == faultTruncate), n)
}

// throttle turns r into the 429 of a refused admission.
func (s *Server) throttle(r reply, j *job, a *admission) reply {
	s.stats.throttled.Add(1)
	e := rateLimited(j.model, a)
	r.status, r.body = e.status, e.appendJSON(make([]byte, 0, 384))
	if !s.cfg.NoRetryAfter && !a.tooLarge {
		r.retryAfter = a.wait
	}
	return r
}

// answer generates the 200 answer to j into r, waits out its latency and truncates it if
// told to.
func (s *Server) answer(ctx context.Context, r reply, j *job, truncate bool) reply {
	out := s.complete(j)
	if j.stream {
		r.stream = s.newStream(j, out, truncate) // paced as it is read
		s.count(j, out, truncate)
		return r
	}
	r.body = j.appendAnswer(make([]byte, 0, out.size(j)), out, s.now().Unix())
	if d := s.latency(j.n, out.maxTokens); d > 0 && !s.wait(ctx, d) {
		s.stats.canceled.Add(1)
		return reply{fail: failGone}
	}
	if truncate {
		r.body = r.body[:len(r.body)/2]
	}
	s.count(j, out, truncate)
	return r
}

// count adds a 200 answer to the stats.
func (s *Server) count(j *job, out *outcome, truncated bool) {
	if truncated {
		s.stats.truncated.Add(1)
		return
	}
	s.stats.ok.Add(1)
	s.stats.promptTokens.Add(j.prompt)
	s.stats.completionTokens.Add(out.tokens)
}

// errorReply is an error answer.
func (s *Server) errorReply(n uint64, e *apiError) reply {
	return reply{status: e.status, id: n, body: e.appendJSON(make([]byte, 0, 256))}
}

// withLimits adds the current rate-limit headers to r.
func (s *Server) withLimits(r reply) reply {
	if s.limits != nil && !s.cfg.NoLimitHeaders {
		r.hasLimits = true
		r.req, r.tok = s.limits.peek(s.now())
	}
	return r
}

// hang blocks until the client gives up or the server is closed.
func (s *Server) hang(ctx context.Context) reply {
	if s.onHang != nil {
		s.onHang()
	}
	select {
	case <-ctx.Done():
		return reply{fail: failGone}
	case <-s.closed:
		return reply{fail: failClosed}
	}
}

// wait sleeps for d, or until the server is closed; it reports false if ctx ended first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if s.onWait != nil {
		s.onWait(d)
	}
	if s.noWait {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closed:
		return true
	case <-ctx.Done():
		return false
	}
}

// setHeaders writes r's headers to h.
func (r *reply) setHeaders(h http.Header) {
	// One backing array for the values; each header gets a slice capped at its length,
	// so that adding a value to one cannot overwrite another.
	vals := make([]string, 0, 12)
	set := func(key, value string) {
		vals = append(vals, value)
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if r.stream != nil {
		set("Content-Type", "text/event-stream; charset=utf-8")
		set("Cache-Control", "no-cache")
	} else {
		set("Content-Type", "application/json")
		set("Content-Length", strconv.Itoa(len(r.body)))
	}
	set("X-Request-Id", string(appendID(make([]byte, 0, 28), "req_", r.id)))
	if r.hasLimits {
		for _, l := range [...]struct {
			s                       limitState
			limit, remaining, reset string
		}{
			{r.req, "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"},
			{r.tok, "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens"},
		} {
			if l.s.limit == 0 {
				continue
			}
			set(l.limit, strconv.FormatInt(l.s.limit, 10))
			set(l.remaining, strconv.FormatInt(l.s.remaining, 10))
			set(l.reset, formatReset(l.s.reset))
		}
	}
	if r.retryAfter > 0 {
		ms := (r.retryAfter + time.Millisecond - 1) / time.Millisecond
		secs := (r.retryAfter + time.Second - 1) / time.Second
		set("Retry-After", strconv.FormatInt(int64(max(secs, 1)), 10))
		set("Retry-After-Ms", strconv.FormatInt(int64(max(ms, 1)), 10))
	}
}

// ServeHTTP serves the OpenAI API under /v1.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	buf := s.getBuf()
	defer s.putBuf(buf)
	tooLarge, err := readBody(buf, req.Body)
	if err != nil {
		return // the client went away while sending
	}
	r := s.handle(&call{ctx: req.Context(), method: req.Method, path: req.URL.Path,
		auth: req.Header.Get("Authorization"), body: buf.Bytes(), tooLarge: tooLarge})
	switch r.fail {
	case failReset, failClosed:
		resetConnection(w)
		return
	case failGone:
		return
	}
	if r.drop {
		s.writeDropped(w, &r)
		return
	}
	r.setHeaders(w.Header())
	defer s.closeAfter(w, r.id)
	if r.stream != nil {
		s.writeStream(w, req.Context(), r.stream)
		return
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body) // a write error means the client went away
}

// resetConnection drops the connection without an answer: the client sees its connection
// reset (TCP RST, thanks to a zero linger time).
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// readBody reads a request body into buf; tooLarge reports a body over maxBody, which is
// not read past the limit.
func readBody(buf *bytes.Buffer, body io.ReadCloser) (tooLarge bool, err error) {
	if body == nil || body == http.NoBody {
		return false, nil
	}
	_, err = buf.ReadFrom(io.LimitReader(body, maxBody+1))
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return buf.Len() > maxBody, nil
}

func (s *Server) getBuf() *bytes.Buffer {
	if b, ok := s.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

func (s *Server) putBuf(b *bytes.Buffer) {
	if b.Cap() > 1<<20 {
		return // don't keep a rare huge body's memory around
	}
	b.Reset()
	s.bufs.Put(b)
}
