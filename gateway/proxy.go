package gateway

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
)

// outcome is what a proxied request came to, for the budget and the ledger.
type outcome struct {
	model  string // the model that answered
	status int    // its status
	usage  sluice.Usage
	sent   bool // an upstream was sent the request and may have charged for it
	// cut is set when the upstream's stream broke after some of it was relayed: the
	// client's answer is cut off too (http.ErrAbortHandler), so that it cannot be taken
	// for a whole one.
	cut bool
}

// serveProxy serves POST on each of Paths.
func (g *Gateway) serveProxy(w http.ResponseWriter, r *http.Request) {
	k, ok := g.authenticate(r)
	if !ok {
		writeError(w, errUnauthorized)
		return
	}
	body, apiErr := readBody(r.Body, r.ContentLength, g.cfg.MaxBodyBytes)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	f, ok := scan(body)
	switch {
	case !ok:
		writeError(w, invalid("", "We could not parse the JSON body of your request: it must be a JSON object."))
		return
	case f.model.Type != gjson.String || f.model.Str == "":
		writeError(w, invalid("model", "You must provide a model parameter."))
		return
	}
	model := f.model.Str
	target := model
	if to, ok := g.cfg.Aliases[model]; ok {
		target = to
	}
	// A rough prompt estimate, a token for every 4 bytes of body, that costs nothing:
	// the answer's usage settles it.
	est := sluice.Estimate{Model: target, PromptTokens: int64(len(body))/4 + 1, MaxOutputTokens: f.maxOutput}
	now := g.cfg.Now()
	guess := est.Reserve()
	if f.maxOutput == 0 {
		guess += defaultOutputGuess
	}
	var cacheKey string
	if g.cfg.Cache != nil && !f.stream && f.deterministic() {
		cacheKey = g.cacheKey(k, r.URL.Path, body)
		if answer, ok := g.cached(r.Context(), cacheKey); ok {
			// A hit is a request of the key's, but sends no tokens upstream.
			if admitKey(w, k, now, 0) {
				writeCached(w, answer)
				g.usage.add(k, f.user, target, sluice.Usage{}, 0, true)
			}
			return
		}
	}
	if !admitKey(w, k, now, guess) {
		return
	}
	settle, apiErr := g.reserve(r.Context(), k, est)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	var arr [maxCandidates]candidate
	cands := g.route(model, arr[:0])
	if len(cands) == 0 {
		settle(sluice.Usage{})
		writeError(w, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found", param: "model",
			msg: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model)})
		return
	}
	out := g.forward(w, r, &f, body, est, cands, cacheKey)
	if out.status/100 == 2 && out.usage == (sluice.Usage{}) {
		// Answered, and no usage came back (a stream cut short, or an upstream that
		// reports none): count the estimate.
		out.usage = sluice.Usage{PromptTokens: est.PromptTokens, CompletionTokens: est.MaxOutputTokens}
	}
	settle(out.usage)
	if out.sent {
		g.usage.add(k, f.user, out.model, out.usage, g.cost(out.model, out.usage), false)
	}
	if out.cut {
		panic(http.ErrAbortHandler)
	}
}

// admitKey takes a request of tokens from k's own limits, or answers 429 and reports
// false.
func admitKey(w http.ResponseWriter, k *clientKey, now time.Time, tokens int64) bool {
	wait, ok := k.admit(now, tokens)
	if !ok {
		writeError(w, &apiError{status: http.StatusTooManyRequests, typ: "requests", code: "rate_limit_exceeded",
			msg: fmt.Sprintf("Rate limit reached for this key: retry in %v.", wait.Round(time.Millisecond)), retryAfter: wait})
	}
	return ok
}

// defaultOutputGuess is the output a request without max_tokens is taken to write, for
// the key's token rate.
const defaultOutputGuess = 256

func (g *Gateway) cost(model string, u sluice.Usage) float64 {
	if g.cfg.Cost == nil || u == (sluice.Usage{}) {
		return 0
	}
	return g.cfg.Cost(model, u)
}

// reserve holds the request's worst case against its key's budget; the settle function
// returned takes the usage the request really had.
func (g *Gateway) reserve(ctx context.Context, k *clientKey, est sluice.Estimate) (func(sluice.Usage), *apiError) {
	if g.cfg.Budget == nil {
		return func(sluice.Usage) {}, nil
	}
	pool, err := g.cfg.Budget(ctx, k.Hash)
	if err != nil {
		g.cfg.Logger.Error("gateway: budget", "key", k.Name, "err", err)
		return nil, &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "The server had an error while processing your request."}
	}
	if pool == nil {
		return func(sluice.Usage) {}, nil
	}
	var mean int64
	for _, u := range g.ups { // the mean output of the upstreams that may answer
		if u.Engine != nil && u.serves(est.Model) {
			mean = max(mean, u.Engine.MeanOutput(defaultOutputGuess))
		}
	}
	settle, ok := pool.Reserve(est, mean)
	if !ok {
		return nil, errQuota
	}
	return settle, nil
}

// forward sends the request to the candidates in turn until one answers, and relays that
// answer. It moves on after no answer, a 5xx, a 429, an open breaker or a limiter that
// would make the request wait too long, as long as nothing has been written to the
// client; the last candidate's answer is relayed whatever it is.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, f *fields, body []byte,
	est sluice.Estimate, cands []candidate, cacheKey string) outcome {
	ctx := r.Context()
	askUsage := f.stream && !f.streamOptions && r.URL.Path != sluice.EndpointResponses
	var lastErr *apiError
	var out outcome
	for i := 0; i < len(cands); i++ {
		c := cands[i]
		last := i == len(cands)-1
		est.Model = c.model
		done, err := g.admit(ctx, c.up, est)
		if err != nil {
			if ctx.Err() != nil {
				return out
			}
			lastErr = admitError(err)
			continue
		}
		addUsage := askUsage && !c.up.noStreamOptions.Load()
		resp, err := g.send(ctx, c, r.URL.Path, f, body, addUsage)
		if err != nil {
			if ctx.Err() != nil {
				done(nil, ctx.Err()) // the client gave up: nothing learned about the upstream
				return out
			}
			done(nil, &sluice.UpstreamError{Code: sluice.CodeConnection, Message: err.Error(), Err: err})
			g.cfg.Logger.Warn("gateway: upstream gave no answer", "upstream", c.up.Name, "err", err)
			lastErr = errNoUpstream
			continue
		}
		if addUsage && resp.StatusCode == http.StatusBadRequest && rejectsStreamOptions(resp) {
			// The upstream does not take stream_options: ask it again without, as it is.
			c.up.noStreamOptions.Store(true)
			done(&sluice.Response{StatusCode: resp.StatusCode}, &sluice.UpstreamError{StatusCode: resp.StatusCode})
			i--
			continue
		}
		out.sent = true
		if !last && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests) {
			g.refused(c, resp, done)
			continue
		}
		usage, status, cut, movedOn := g.relay(w, r, c, resp, done, addUsage, cacheKey, last)
		if movedOn {
			continue
		}
		out.model, out.status, out.usage, out.cut = c.model, status, usage, cut
		return out
	}
	if lastErr == nil {
		lastErr = errNoUpstream
	}
	writeError(w, lastErr)
	return out
}

// admit lets the request through the upstream's engine, if it has one.
func (g *Gateway) admit(ctx context.Context, u *upstream, est sluice.Estimate) (func(*sluice.Response, error), error) {
	if u.Engine == nil {
		return func(*sluice.Response, error) {}, nil
	}
	return u.Engine.Admit(ctx, est, g.cfg.QueueWait)
}

// admitError is what a client is told when no upstream let its request through.
func admitError(err error) *apiError {
	if errors.Is(err, sluice.ErrRateLimited) {
		return &apiError{status: http.StatusTooManyRequests, typ: "requests", code: "rate_limit_exceeded",
			msg: "The upstreams of this model are at their rate limits: retry shortly.", retryAfter: time.Second}
	}
	return &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "upstream_unavailable",
		msg: "The upstreams of this model are failing: retry shortly."}
}

// send sends the request to c, the body renamed to c's model and asking a stream for its
// usage when needed.
func (g *Gateway) send(ctx context.Context, c candidate, path string, f *fields, body []byte, addUsage bool) (*http.Response, error) {
	if c.model != f.model.Str {
		body = withModel(make([]byte, 0, len(body)+len(c.model)+2), body, f.model, c.model)
	}
	if addUsage {
		body = withUsageOption(make([]byte, 0, len(body)+len(usageOption)+1), body)
	}
	u := c.up.urls[path] // shared: a transport does not change the request
	h := make(http.Header, 3)
	req := (&http.Request{
		Method: http.MethodPost, URL: u, Host: u.Host, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: bodyOf(body), ContentLength: int64(len(body)),
		GetBody: func() (io.ReadCloser, error) { return bodyOf(body), nil },
	}).WithContext(ctx)
	h["Content-Type"] = jsonType
	if c.up.auth != nil {
		h["Authorization"] = c.up.auth
	}
	if f.stream {
		h["Accept"] = sseType
	}
	return c.up.rt.RoundTrip(req)
}

var (
	jsonType = []string{"application/json"}
	sseType  = []string{"text/event-stream"}
)

// rejectsStreamOptions reports whether a 400 is about the stream_options the gateway
// added. It reads the start of the body and leaves resp.Body able to give it again.
func rejectsStreamOptions(resp *http.Response) bool {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
	if !bytes.Contains(data, []byte("stream_options")) {
		return false
	}
	resp.Body.Close()
	return true
}

// refused reads a 5xx or 429 the gateway moves on from, and tells the engine.
func (g *Gateway) refused(c candidate, resp *http.Response, done func(*sluice.Response, error)) {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	ue := &sluice.UpstreamError{StatusCode: resp.StatusCode, RetryAfter: openai.ParseRetryAfter(resp.Header, time.Now()),
		Code: gjson.GetBytes(data, "error.code").String()}
	g.failOver(c, resp, ue, done)
}

// failOver tells the engine of the failure ue of c's answer resp, which the gateway moves
// on from.
func (g *Gateway) failOver(c candidate, resp *http.Response, ue *sluice.UpstreamError, done func(*sluice.Response, error)) {
	done(&sluice.Response{StatusCode: resp.StatusCode, Limits: openai.ParseRateLimits(resp.Header, time.Now())}, ue)
	g.cfg.Logger.Info("gateway: failing over", "upstream", c.up.Name, "status", resp.StatusCode, "error_status", ue.StatusCode,
		"code", ue.Code)
}

// relayedHeaders are the upstream's answer headers passed to the client.
var relayedHeaders = []string{"Content-Type", "X-Request-Id", "Openai-Processing-Ms", "Openai-Version"}

// relay writes the upstream's answer to the client, a stream event by event, and
// returns its usage and the status it stands for, and whether the upstream's stream broke
// after some of it was relayed (cut). A 2xx answer can be an error: a body that is an
// error object (openai.AnswerError), as OpenRouter and other relays pass on a provider's
// failure, or a stream that reports an error (openai.EventError) or breaks before its
// first content. Such an answer is not relayed when a candidate is left (last
// unset): relay tells done and the log, and reports movedOn. Otherwise a body is relayed
// with the status its error stands for (see errorStatus), a stream as it is; either way
// done is told of the failure, and no usage is counted but what the stream reported.
func (g *Gateway) relay(w http.ResponseWriter, r *http.Request, c candidate, resp *http.Response,
	done func(*sluice.Response, error), dropUsage bool, cacheKey string, last bool) (usage sluice.Usage, status int, cut, movedOn bool) {
	defer resp.Body.Close()
	start := time.Now()
	answer := &sluice.Response{StatusCode: resp.StatusCode, Limits: openai.ParseRateLimits(resp.Header, start)}
	var (
		err    error
		failed *sluice.UpstreamError
	)
	status = resp.StatusCode
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		s := newStreamRelay(resp, dropUsage, start)
		defer s.free()
		if resp.StatusCode/100 == 2 {
			failed = s.hold()
		}
		if moveOn := cmp.Or(failed, s.broken()); moveOn != nil && !last && r.Context().Err() == nil {
			g.failOver(c, resp, moveOn, done)
			return sluice.Usage{}, 0, false, true
		}
		relayHeaders(w, c, resp, resp.StatusCode)
		w.WriteHeader(resp.StatusCode)
		err = s.relay(w)
		cut = s.cut != nil && errors.Is(err, s.cut)
		answer.Usage = s.usage
		if failed == nil && s.failed != nil && err == nil {
			err = s.failed // an error after the stream's first data: relayed, and counted
		}
	} else {
		buf := getBuf()
		defer putBuf(buf)
		data, rerr := readAnswer(buf, resp, g.cfg.MaxAnswerBytes)
		if rerr == nil && resp.StatusCode/100 == 2 {
			failed = openai.AnswerError(resp.StatusCode, resp.Header, data, start)
		}
		if failed != nil && !last {
			g.failOver(c, resp, failed, done)
			return sluice.Usage{}, 0, false, true
		}
		relayHeaders(w, c, resp, cmp.Or(errorStatusOf(failed), resp.StatusCode))
		answer.Usage, err = g.relayBody(w, resp, data, rerr, failed, cacheKey)
	}
	answer.Latency = time.Since(start)
	if failed != nil {
		status = errorStatus(failed)
		g.cfg.Logger.Info("gateway: upstream answered an error", "upstream", c.up.Name, "status", resp.StatusCode,
			"error_status", failed.StatusCode, "code", failed.Code)
		if err == nil {
			err = failed
		}
	}
	if err == nil && resp.StatusCode >= 400 {
		err = &sluice.UpstreamError{StatusCode: resp.StatusCode, RetryAfter: openai.ParseRetryAfter(resp.Header, start)}
	}
	if err != nil && r.Context().Err() != nil {
		err = r.Context().Err()
	}
	done(answer, err)
	return answer.Usage, status, cut, false
}

// errorStatusOf is errorStatus of ue, 0 for no error.
func errorStatusOf(ue *sluice.UpstreamError) int {
	if ue == nil {
		return 0
	}
	return errorStatus(ue)
}

// errorStatus is the status a 2xx answer that is the error ue is relayed with: the
// status its code stands for (OpenRouter's {"error":{"code":429}} is a 429), or 502 Bad
// Gateway.
func errorStatus(ue *sluice.UpstreamError) int {
	if ue.StatusCode >= 400 {
		return ue.StatusCode
	}
	return http.StatusBadGateway
}

// relayHeaders sets the headers of c's answer resp that the client gets, relayed with
// status. A 429 keeps the upstream's Retry-After, Retry-After-Ms and x-ratelimit-*
// headers, so that a client (the official SDKs read retry-after) waits as long as the
// upstream asks rather than blindly; a 5xx keeps Retry-After and Retry-After-Ms (the SDKs
// honour them on any status they retry). Other answers do not give the upstream account's
// limits, which are not the client's.
func relayHeaders(w http.ResponseWriter, c candidate, resp *http.Response, status int) {
	h := w.Header()
	for _, name := range relayedHeaders {
		if v, ok := resp.Header[name]; ok {
			h[name] = v
		}
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		for name, v := range resp.Header {
			if name == "Retry-After" || name == "Retry-After-Ms" ||
				(status == http.StatusTooManyRequests && strings.HasPrefix(name, "X-Ratelimit-")) {
				h[name] = v
			}
		}
	}
	h["X-Sluice-Upstream"] = c.up.name
}

// relayBody relays a whole (not streamed) answer, data as readAnswer read it (rerr its
// error), and caches it when cacheKey is set and it is a 200. An answer that is the error
// failed is relayed with errorStatus and counts no usage.
func (g *Gateway) relayBody(w http.ResponseWriter, resp *http.Response, data []byte, rerr error,
	failed *sluice.UpstreamError, cacheKey string) (sluice.Usage, error) {
	if rerr != nil {
		writeError(w, &apiError{status: http.StatusBadGateway, typ: "server_error", code: "invalid_response",
			msg: "The upstream's answer could not be read."})
		return sluice.Usage{}, &sluice.UpstreamError{StatusCode: resp.StatusCode, Code: sluice.CodeInvalidResponse, Err: rerr}
	}
	var u sluice.Usage
	status := resp.StatusCode
	switch {
	case failed != nil:
		status = errorStatus(failed)
	case status < 300:
		u.PromptTokens, u.CompletionTokens, u.CachedTokens = readUsage(answerUsage(data))
	}
	h := w.Header()
	if cl := resp.Header["Content-Length"]; resp.ContentLength == int64(len(data)) && len(cl) == 1 {
		h["Content-Length"] = cl // the upstream's own: no need to format it again
	} else {
		h["Content-Length"] = []string{strconv.Itoa(len(data))}
	}
	w.WriteHeader(status)
	_, werr := w.Write(data)
	if cacheKey != "" && status == http.StatusOK && werr == nil {
		g.putCached(cacheKey, data)
	}
	return u, nil
}

// readAnswer reads a whole answer of at most limit bytes into buf: at once when its
// length is known.
func readAnswer(buf *bytes.Buffer, resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= limit {
		buf.Grow(int(n))
		data := buf.AvailableBuffer()[:n]
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return nil, err
	case n > limit:
		return nil, fmt.Errorf("answer larger than %d bytes", limit)
	}
	return buf.Bytes(), nil
}
