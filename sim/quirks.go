package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
)

// Quirks are upstream behaviours that sluice met on servers it did not write, each
// reproducible here. The zero value has none.
type Quirks struct {
	// TransientNotFound requests are answered 404 model_not_found, whatever their model,
	// once NotFoundAfter requests have been answered 200: a load balancer briefly routing
	// to a replica that has not loaded the model. The model stays listed by /v1/models.
	TransientNotFound int64
	NotFoundAfter     int64
	// Drop is the fraction, in [0, 1], of 200 answers whose connection is dropped after
	// half of the body (or half of a stream's events) was sent. It is drawn apart from the
	// other faults.
	Drop float64
	// Refuse makes Start reserve a port and serve nothing on it: every connection is
	// refused. (Listener.Refuse does the same to a running listener.)
	Refuse bool
	// NoStreamUsage leaves the usage chunk out of streams, even when stream_options asks
	// for it, as some servers do.
	NoStreamUsage bool
	// RejectStreamOptions answers 400 to a request that has stream_options, as servers
	// that do not know the parameter do.
	RejectStreamOptions bool
	// ErrorIn200 is the fraction, in [0, 1], of generation requests answered 200 with an
	// error object as the whole body, {"error":{"message","code":502}}, as OpenRouter and
	// other gateways pass on a provider's failure. It is drawn apart from the other faults.
	ErrorIn200 float64
	// CloseAfterAnswer is the fraction, in [0, 1], of answers after which the connection
	// is closed at once, though the answer did not say "Connection: close": a server or a
	// load balancer closing a keep-alive connection early. A client that sends its next
	// request on it finds the connection closed. It is drawn apart from the other faults,
	// and applies to a Listener only (Transport has no connections).
	CloseAfterAnswer float64
	// StreamErrorAfterRole is the fraction, in [0, 1], of streamed chat requests answered
	// 200 with a stream that sends the role-only first chunk, then an error event in
	// OpenRouter's shape ({"error":{"message","code":502}}) and [DONE], as relays pass on
	// a provider's failure after the stream started. It is drawn apart from the other
	// faults.
	StreamErrorAfterRole float64
}

// The purposes of the quirks' draws, apart from the other faults.
const (
	drawDrop       uint64 = 0x44
	drawErrorIn200 uint64 = 0x45
	drawClose      uint64 = 0x46
	drawStreamErr  uint64 = 0x47
)

// errorIn200Body is the body of an ErrorIn200 answer, in OpenRouter's shape.
const errorIn200Body = `{"error":{"message":"Provider returned error","code":502,"metadata":{"provider_name":"sim","raw":"upstream overloaded"}}}`

// quirkState is the Server's bookkeeping for Quirks.
type quirkState struct {
	notFound   atomic.Int64 // transient 404s sent
	dropped    atomic.Int64 // connections dropped mid-answer
	errorIn200 atomic.Int64 // 200s whose body was an error (Quirks.ErrorIn200)
	closed     atomic.Int64 // connections closed after an answer (Quirks.CloseAfterAnswer)
	streamErr  atomic.Int64 // streams that failed after their role chunk (Quirks.StreamErrorAfterRole)
}

// Dropped returns how many answers had their connection dropped midway (Quirks.Drop).
func (s *Server) Dropped() int64 { return s.quirks.dropped.Load() }

// ErrorsIn200 returns how many requests were answered 200 with an error body
// (Quirks.ErrorIn200).
func (s *Server) ErrorsIn200() int64 { return s.quirks.errorIn200.Load() }

// StreamErrors returns how many streams failed after their role chunk
// (Quirks.StreamErrorAfterRole).
func (s *Server) StreamErrors() int64 { return s.quirks.streamErr.Load() }

// ClosedAfterAnswer returns how many connections were closed right after an answer
// (Quirks.CloseAfterAnswer).
func (s *Server) ClosedAfterAnswer() int64 { return s.quirks.closed.Load() }

// closeAfter closes the connection of an answer written whole, by the CloseAfterAnswer
// draw of request n.
func (s *Server) closeAfter(w http.ResponseWriter, n uint64) {
	if q := s.cfg.CloseAfterAnswer; q <= 0 || s.draw(n, drawClose) >= q {
		return
	}
	// Counted before the answer is flushed, so that a client holding its answer finds
	// it counted; uncounted if the connection cannot be closed.
	s.quirks.closed.Add(1)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		s.quirks.closed.Add(-1)
		return // HTTP/2: nothing to close
	}
	_ = conn.Close()
}

// quirkBefore answers a generation request by a quirk that comes before decoding, if one
// applies.
func (s *Server) quirkBefore(c *call, n uint64) (reply, bool) {
	q := &s.cfg.Quirks
	if q.RejectStreamOptions && bytes.Contains(c.body, []byte(`"stream_options"`)) {
		s.stats.badRequests.Add(1)
		return s.errorReply(n, invalidRequest("stream_options", "unknown_parameter",
			"Unrecognized request argument supplied: stream_options")), true
	}
	if q.ErrorIn200 > 0 && s.draw(n, drawErrorIn200) < q.ErrorIn200 {
		s.quirks.errorIn200.Add(1)
		return reply{status: http.StatusOK, id: n, body: []byte(errorIn200Body)}, true
	}
	if q.StreamErrorAfterRole > 0 && s.draw(n, drawStreamErr) < q.StreamErrorAfterRole &&
		strings.HasSuffix(c.path, "/chat/completions") && streams(c.body) {
		s.quirks.streamErr.Add(1)
		return reply{status: http.StatusOK, id: n, stream: errorAfterRole(s.now().Unix())}, true
	}
	if q.TransientNotFound > 0 && s.stats.ok.Load() >= q.NotFoundAfter {
		if s.quirks.notFound.Add(1) <= q.TransientNotFound {
			s.stats.notFound.Add(1)
			model := "the requested model"
			if m := modelOf(c.body); m != "" {
				model = m
			}
			return s.errorReply(n, modelNotFound(model)), true
		}
	}
	return reply{}, false
}

// quirkJob applies the quirks that change a decoded request.
func (s *Server) quirkJob(j *job) {
	if s.cfg.NoStreamUsage {
		j.includeUsage = false
	}
}

// quirkAfter marks a 200 answer to be dropped midway, by the Drop draw.
func (s *Server) quirkAfter(r reply, n uint64) reply {
	if r.fail == failNone && r.status == http.StatusOK && s.cfg.Drop > 0 && s.draw(n, drawDrop) < s.cfg.Drop {
		r.drop = true
		s.quirks.dropped.Add(1)
	}
	return r
}

// half returns the first half of r's body, or of its stream's events.
func (r *reply) half() []byte {
	if r.stream == nil {
		return r.body[:len(r.body)/2]
	}
	k := len(r.stream.ends) / 2
	if k == 0 {
		return nil
	}
	return r.stream.data[:r.stream.ends[k-1]]
}

// writeDropped sends the headers and half of r, then drops the connection.
func (s *Server) writeDropped(w http.ResponseWriter, r *reply) {
	r.setHeaders(w.Header())
	w.WriteHeader(r.status)
	_, _ = w.Write(r.half())
	_ = http.NewResponseController(w).Flush()
	resetConnection(w)
}

// droppedBody is the body of a dropped answer for Transport: half of it, then a reset.
func droppedBody(r *reply) io.ReadCloser {
	return io.NopCloser(io.MultiReader(bytes.NewReader(r.half()), errReader{errReset}))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// modelOf reads a body's model field, "" when it has none.
func modelOf(body []byte) string {
	var m struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return ""
	}
	return m.Model
}

// streams reports whether a request body asks for a stream.
func streams(body []byte) bool {
	var m struct {
		Stream bool `json:"stream"`
	}
	return json.Unmarshal(body, &m) == nil && m.Stream
}

// errorAfterRole is the stream of a StreamErrorAfterRole answer: the role chunk, the
// error event, [DONE].
func errorAfterRole(created int64) *stream {
	events := [...]string{
		fmt.Sprintf(`data: {"id":"chatcmpl-sim","object":"chat.completion.chunk","created":%d,"model":"sim","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`, created),
		"data: " + errorIn200Body,
		"data: [DONE]",
	}
	st := &stream{}
	for _, ev := range events {
		st.data = append(append(st.data, ev...), "\n\n"...)
		st.ends = append(st.ends, len(st.data))
		st.waits = append(st.waits, 0)
	}
	return st
}

// refusedURL reserves a loopback port and closes it, so that connections to the URL it
// returns are refused.
func refusedURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("sim: listen: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("sim: close: %w", err)
	}
	return "http://" + addr + "/v1", nil
}

// Refuse stops serving at once: the listener and every connection are closed, so later
// requests have their connection refused, as from an upstream that went down. Close must
// still be called.
func (l *Listener) Refuse() {
	l.Server.Close()
	_ = l.srv.Close()
}

// startRefusing is Start for Quirks.Refuse: a Listener whose URL refuses connections.
func startRefusing(s *Server) (*Listener, error) {
	u, err := refusedURL()
	if err != nil {
		return nil, err
	}
	l := &Listener{Server: s, URL: u, srv: &http.Server{ReadHeaderTimeout: 1}, done: make(chan struct{})}
	close(l.done)
	return l, nil
}
