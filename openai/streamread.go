package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/sluice-llm/sluice"
)

// errStreamIdle is the cause of a stream cut off because it sent nothing for
// Config.StreamIdleTimeout.
var errStreamIdle = errors.New("stream idle")

// streamReadSize is the first size of the buffer a stream is read into; it grows for
// events larger than it.
const streamReadSize = 16 << 10

// streamBody is the member that makes a request stream.
const streamBody = `"stream":true`

// streams reports whether sluice may make a request to path stream (Config.Stream): the
// generation endpoints that answer a stream sluice assembles.
func streams(path string) bool {
	return path == sluice.EndpointChatCompletions || path == sluice.EndpointCompletions || path == sluice.EndpointResponses
}

// withStream returns body with "stream":true added when body is one JSON object with no
// "stream" member; otherwise body as it is (a request that says "stream": false keeps
// it). Nothing else of body changes.
func withStream(body []byte) []byte {
	m, ok := streamMembers(body)
	if !ok || m.hasStream {
		return body
	}
	end := bytes.LastIndexByte(body, '}')
	out := make([]byte, 0, len(body)+len(streamBody)+1)
	out = append(out, body[:end]...)
	if len(bytes.TrimSpace(body[bytes.IndexByte(body, '{')+1:end])) > 0 {
		out = append(out, ',')
	}
	out = append(out, streamBody...)
	return append(out, body[end:]...)
}

// receiveStream reads a 2xx text/event-stream answer as it arrives, assembling it event
// by event into the object the request would have answered without streaming (see
// assembleStream). It sets the Response's TTFT when the first generated content arrives
// (or when the stream ends, if it had none) and Latency when the stream ends. With
// cancel not nil, a stream that sends no byte for the Client's idle timeout is cut off
// with an *sluice.UpstreamError with Code sluice.CodeTimeout; the whole-request timeout
// is the context's.
func (c *Client) receiveStream(ctx context.Context, ep endpoint, hresp *http.Response, start time.Time, cancel context.CancelCauseFunc) (*sluice.Response, error) {
	resp := &sluice.Response{
		StatusCode: hresp.StatusCode,
		RequestID:  c.redactString(requestID(hresp.Header)),
		Limits:     parseRateLimits(hresp.Header, c.now()),
	}
	var idle *time.Timer
	if cancel != nil {
		idle = time.AfterFunc(c.idle, func() { cancel(errStreamIdle) })
		defer idle.Stop()
	}
	var (
		a     assembler
		buf   = make([]byte, 0, streamReadSize)
		total int64
		serr  error
	)
	for serr == nil {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, rerr := hresp.Body.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			if idle != nil {
				idle.Reset(c.idle)
			}
			if total += int64(n); total > c.maxBody {
				resp.Latency = time.Since(start)
				return resp, c.tooLarge(resp, hresp.Header)
			}
			buf = buf[:len(buf)+n]
			if end := lastEventEnd(buf); end > 0 {
				serr = c.feed(&a, buf[:end])
				buf = buf[:copy(buf, buf[end:])]
			}
			if resp.TTFT == 0 && (a.content || a.done) {
				resp.TTFT = time.Since(start)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if a.done && serr == nil {
				break // whole: what follows the end marker does not matter
			}
			return nil, c.streamCut(ctx, ep, rerr, start, total)
		}
	}
	if serr == nil {
		serr = c.feed(&a, buf)
	}
	resp.Latency = time.Since(start)
	if resp.TTFT == 0 {
		resp.TTFT = resp.Latency
	}
	var body []byte
	var usage sluice.Usage
	if serr == nil {
		body, usage, serr = a.result()
		body, _ = c.redact(body)
	}
	if ue := c.streamResult(resp, hresp.Header, body, usage, serr); ue != nil {
		return resp, ue
	}
	return resp, nil
}

// feed gives whole events to the assembler, with the API key redacted wherever an event
// echoes it (the assembled body is redacted again: deltas could join into it).
func (c *Client) feed(a *assembler, events []byte) error {
	events, _ = c.redact(events)
	return forEachEvent(events, a.event)
}

// streamCut is the error of a stream that could not be read to its end: cut off for
// idling, or lost.
func (c *Client) streamCut(ctx context.Context, ep endpoint, err error, start time.Time, read int64) *sluice.UpstreamError {
	if errors.Is(context.Cause(ctx), errStreamIdle) {
		return &sluice.UpstreamError{Code: sluice.CodeTimeout, Err: errStreamIdle,
			Message: fmt.Sprintf("read stream from %s: nothing for %v after %d bytes (the stream idle timeout)", ep.display, c.idle, read)}
	}
	return c.noAnswer(ctx, "read answer from "+ep.display, err, start)
}

// lastEventEnd is the end of the last whole event in data (just past its blank line), 0
// when there is none yet.
func lastEventEnd(data []byte) int {
	end := 0
	for _, sep := range [...]string{"\n\n", "\r\r", "\r\n\r\n"} {
		if i := bytes.LastIndex(data, []byte(sep)); i >= 0 {
			end = max(end, i+len(sep))
		}
	}
	return end
}
