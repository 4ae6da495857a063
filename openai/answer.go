package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

// interpret fills resp's Body and Usage from an answer's body and returns the error the
// answer stands for, nil for a usable 2xx answer. raw is owned by the caller.
func (c *Client) interpret(resp *sluice.Response, h http.Header, raw *rawBody) *sluice.UpstreamError {
	redacted, fresh := c.redact(raw.data)
	owned := func() []byte {
		if fresh {
			return redacted
		}
		return raw.owned()
	}
	ct := header(h, "Content-Type")
	if resp.StatusCode/100 != 2 {
		return c.failure(resp, h, redacted, ct, owned)
	}
	if isEventStream(ct) {
		return c.stream(resp, h, redacted)
	}
	usage, errValue, err := decodeAnswer(redacted)
	if err == nil {
		resp.Body, resp.Usage = owned(), usage
		if errValue != nil {
			return errorAnswer(resp, h, redacted, c.now())
		}
		return nil
	}
	if looksLikeStream(redacted) { // a stream sent without its content type
		return c.stream(resp, h, redacted)
	}
	msg := fmt.Sprintf("%d answer is not valid JSON: %s", resp.StatusCode, describeInvalid(redacted, ct, err))
	resp.Body = errorObject(msg, sluice.CodeInvalidResponse)
	return &sluice.UpstreamError{StatusCode: resp.StatusCode, Code: sluice.CodeInvalidResponse, Message: msg, Err: err}
}

// stream assembles a streamed 2xx answer into resp.
func (c *Client) stream(resp *sluice.Response, h http.Header, data []byte) *sluice.UpstreamError {
	body, usage, serr := assembleStream(data)
	return c.streamResult(resp, h, body, usage, serr)
}

// streamResult fills resp with an assembled stream, or with the error serr that kept it
// from being assembled, which it returns. An error the upstream reported in the stream
// has its status read as in a 2xx answer (codeStatus), from the stream's headers h.
func (c *Client) streamResult(resp *sluice.Response, h http.Header, body []byte, usage sluice.Usage, serr error) *sluice.UpstreamError {
	if serr == nil {
		resp.Body, resp.Usage = body, usage
		return nil
	}
	ue := &sluice.UpstreamError{StatusCode: resp.StatusCode, Code: sluice.CodeInvalidResponse, Err: serr}
	var se *streamError
	if errors.As(serr, &se) { // the upstream reported an error inside the stream
		ue.Type, ue.Message = se.info.Type, "stream error: "+se.info.Message
		if se.info.Code != "" {
			ue.Code = se.info.Code
		}
		codeStatus(ue, se.info, h, c.now())
	} else {
		ue.Message = fmt.Sprintf("%d answer: %v", resp.StatusCode, serr)
	}
	ue.Message = c.redactString(ue.Message)
	resp.Body = errorObject(ue.Message, ue.Code)
	return ue
}

// failure fills resp for an answer with an error status and returns its error.
func (c *Client) failure(resp *sluice.Response, h http.Header, data []byte, ct string, owned func() []byte) *sluice.UpstreamError {
	ue := &sluice.UpstreamError{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(h, c.now())}
	if jsonl.Valid(data) {
		ei := parseErrorBody(data)
		ue.Type, ue.Code, ue.Message = ei.Type, ei.Code, ei.Message
		if isModelNotFound(resp.StatusCode, ei) {
			ue.Code = sluice.CodeModelNotFound
		}
		if ue.Message == "" {
			ue.Message = statusText(resp.StatusCode)
			if s := textSnippet(data, false, maxSnippet); s != "" && s != "{}" {
				ue.Message += ": " + s
			}
		}
		resp.Body = owned()
	} else {
		ue.Message = statusText(resp.StatusCode)
		if s := textSnippet(data, isHTML(ct, data), maxSnippet); s != "" {
			ue.Message += ": " + s
		}
		resp.Body = errorObject(ue.Message, "")
	}
	return ue
}

// errorAnswer is the error of a 2xx answer whose body is an error object (decodeAnswer):
// the request failed, and a retry may succeed. A numeric code in the error that is an
// HTTP error status (OpenRouter's {"error":{"code":429}}, say) stands for the status, so
// that a throttled request backs off and slows the rate like a 429 and a client error is
// not retried; any other is kept as the 2xx it came with, which is retried.
func errorAnswer(resp *sluice.Response, h http.Header, data []byte, now time.Time) *sluice.UpstreamError {
	return infoError(resp.StatusCode, parseErrorBody(data), h, now)
}

// infoError is errorAnswer for an error already read, from a 2xx answer of status.
func infoError(status int, ei errorInfo, h http.Header, now time.Time) *sluice.UpstreamError {
	ue := &sluice.UpstreamError{StatusCode: status, Type: ei.Type, Code: ei.Code, Message: ei.Message}
	codeStatus(ue, ei, h, now)
	if ue.Message == "" {
		ue.Message = "error object in a " + strconv.Itoa(status) + " answer"
	}
	ue.Message = fmt.Sprintf("%d answer is an error: %s", status, ue.Message)
	return ue
}

// codeStatus gives ue, the error ei of a 2xx answer or stream, the HTTP error status a
// numeric code in ei stands for, with its RetryAfter read from h, and marks a model not
// found. One mapping for answers and streams: a 429 sent in either throttles, a 400 is final.
func codeStatus(ue *sluice.UpstreamError, ei errorInfo, h http.Header, now time.Time) {
	if s, err := strconv.Atoi(ei.Code); err == nil && s >= 400 && s <= 599 {
		ue.StatusCode = s
		ue.RetryAfter = parseRetryAfter(h, now)
	}
	if isModelNotFound(ue.StatusCode, ei) {
		ue.Code = sluice.CodeModelNotFound
	}
}

// tooLarge fills resp for an answer over MaxBodyBytes and returns its error.
func (c *Client) tooLarge(resp *sluice.Response, h http.Header) *sluice.UpstreamError {
	msg := fmt.Sprintf("%d answer body is larger than %d bytes", resp.StatusCode, c.maxBody)
	resp.Body = errorObject(msg, sluice.CodeInvalidResponse)
	ue := &sluice.UpstreamError{StatusCode: resp.StatusCode, Code: sluice.CodeInvalidResponse, Message: msg, Err: errTooLarge}
	if resp.StatusCode/100 != 2 {
		ue.RetryAfter = parseRetryAfter(h, c.now())
	}
	return ue
}

// noAnswer is the error for a request that got no complete answer. op names what failed
// with a URL that has no query and no credentials.
func (c *Client) noAnswer(ctx context.Context, op string, err error, start time.Time) *sluice.UpstreamError {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // its message repeats the full URL; op names it without the query
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	switch cerr := ctx.Err(); {
	case errors.Is(cerr, context.Canceled):
		return &sluice.UpstreamError{Message: op + ": canceled", Err: cerr}
	case errors.Is(cerr, context.DeadlineExceeded):
		return &sluice.UpstreamError{Code: sluice.CodeTimeout, Err: cerr,
			Message: fmt.Sprintf("%s: no complete answer after %v", op, elapsed)}
	}
	msg := c.redactString(op + ": " + err.Error())
	if isTimeout(err) {
		return &sluice.UpstreamError{Code: sluice.CodeTimeout, Message: msg, Err: err}
	}
	return &sluice.UpstreamError{Code: sluice.CodeConnection, Message: msg, Err: err}
}

// isTimeout reports whether err is a timeout waiting for an answer (an http.Client
// timeout, a transport's ResponseHeaderTimeout), as opposed to failing to connect.
func isTimeout(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusText names an HTTP status: "Bad Gateway", or "status 520" for one Go does not know.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "status " + strconv.Itoa(code)
}

// errorObject is an OpenAI-shaped JSON error body carrying msg, for answers whose own
// body cannot be passed on. code "" is written as null.
func errorObject(msg, code string) json.RawMessage {
	type detail struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	d := detail{Message: msg, Type: "upstream_error"}
	if code != "" {
		d.Code = &code
	}
	b, err := json.Marshal(struct {
		Error detail `json:"error"`
	}{d})
	if err != nil { // cannot happen: strings always marshal
		return json.RawMessage(`{"error":{"message":"upstream error","type":"upstream_error","param":null,"code":null}}`)
	}
	return b
}

// header returns the first value of a header given in canonical form, without the
// canonicalisation http.Header.Get does on every call.
func header(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}
