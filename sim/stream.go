package sim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// stream is a text/event-stream answer: its events, written all at once but sent paced,
// the first after the time to first token and each further content event after the time
// per token.
type stream struct {
	data  []byte
	ends  []int           // the end of each event in data
	waits []time.Duration // the wait before each event
	// stalled streams send their events, then nothing, until the client gives up or
	// the server is closed.
	stalled bool
}

// stall makes st send its first half and then stall.
func (st *stream) stall() {
	n := max(len(st.ends)/2, 1)
	st.ends, st.waits, st.data, st.stalled = st.ends[:n], st.waits[:n], st.data[:st.ends[n-1]], true
}

// hold blocks a stalled stream until ctx ends or the server is closed; it reports false
// when ctx ended.
func (s *Server) hold(ctx context.Context) bool {
	if s.onHang != nil {
		s.onHang()
	}
	select {
	case <-ctx.Done():
		return false
	case <-s.closed:
		return true
	}
}

// delay is how long to wait before sending event i.
func (st *stream) delay(i int) time.Duration { return st.waits[i] }

// event returns event i.
func (st *stream) event(i int) []byte {
	start := 0
	if i > 0 {
		start = st.ends[i-1]
	}
	return st.data[start:st.ends[i]]
}

// newStream builds the events of a streamed chat or completions answer: a first chunk
// (the role, for chat), one chunk per word of each choice, a last chunk per choice with
// its finish reason, the usage chunk when asked for, and [DONE]. A truncated stream stops
// halfway, without [DONE].
func (s *Server) newStream(j *job, out *outcome, truncate bool) *stream {
	created := s.now().Unix()
	st := &stream{}
	first, per := s.jitter(j.n, s.cfg.TTFT), s.jitter(j.n, s.cfg.PerToken)
	b := make([]byte, 0, 1024)
	end := func(wait time.Duration) {
		if len(st.ends) == 0 {
			wait = first
		}
		b = append(b, "\n\n"...)
		st.ends = append(st.ends, len(b))
		st.waits = append(st.waits, wait)
	}
	if j.ep == epChat {
		b = j.appendChunk(b, created, 0, `{"role":"assistant","content":"","refusal":null}`, "", "")
		end(0)
	}
	for i, c := range out.choices {
		for w := range words(c.text) {
			b = j.appendChunk(b, created, i, "", w, "")
			end(per)
		}
		b = j.appendChunk(b, created, i, "{}", "", c.finish)
		end(0)
	}
	if j.includeUsage {
		b = j.appendChunk(b, created, -1, "", "", "")
		b = j.appendUsage(b[:len(b)-1], out) // reopen the chunk to add its usage
		b = append(b, '}')
		end(0)
	}
	b = append(b, "data: [DONE]"...)
	end(0)
	if truncate {
		n := len(st.ends) / 2
		st.ends, st.waits = st.ends[:n], st.waits[:n]
		b = b[:st.ends[n-1]]
	}
	st.data = b
	return st
}

// words splits text before each space: the pieces a stream sends one by one.
func words(text string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for len(text) > 0 {
			i := strings.IndexByte(text[1:], ' ') + 1
			if i == 0 {
				i = len(text)
			}
			if !yield(text[:i]) {
				return
			}
			text = text[i:]
		}
	}
}

// appendChunk appends one "data: {chunk}" event, without its blank line. For chat, delta
// is the raw delta object, or content the text of one; for completions, content is the
// text. index -1 is the usage chunk, with no choices.
func (j *job) appendChunk(b []byte, created int64, index int, delta, content, finish string) []byte {
	object, prefix := "chat.completion.chunk", "chatcmpl-"
	if j.ep == epCompletions {
		object, prefix = "text_completion", "cmpl-"
	}
	b = append(b, "data: "...)
	b = j.appendHead(append(b, '{'), prefix, object, created)
	if j.ep == epChat {
		b = appendStringField(b, "system_fingerprint", "fp_sim")
	}
	b = appendKey(b, "choices")
	if index < 0 {
		return append(b, "[]}"...)
	}
	b = appendIntField(append(b, "[{"...), "index", int64(index))
	switch {
	case j.ep == epCompletions:
		b = appendStringField(b, "text", content)
	case delta != "":
		b = append(appendKey(b, "delta"), delta...)
	default:
		b = append(appendKey(b, "delta"), '{')
		b = append(appendStringField(b, "content", content), '}')
	}
	b = append(appendKey(b, "logprobs"), "null"...)
	if finish == "" {
		b = append(appendKey(b, "finish_reason"), "null"...)
	} else {
		b = appendStringField(b, "finish_reason", finish)
	}
	b = append(b, "}]"...)
	if j.includeUsage {
		b = append(appendKey(b, "usage"), "null"...)
	}
	return append(b, '}')
}

// writeStream sends a stream to a client connection, flushing every event.
func (s *Server) writeStream(w http.ResponseWriter, ctx context.Context, st *stream) {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	for i := range st.ends {
		if d := st.delay(i); d > 0 && !s.wait(ctx, d) {
			return
		}
		if _, err := w.Write(st.event(i)); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	if st.stalled {
		s.hold(ctx)
	}
}

// streamBody is a stream as a response body for Transport: each Read waits for the next
// event when it is due.
type streamBody struct {
	s         *Server
	ctx       context.Context
	st        *stream
	next      int
	pending   []byte
	closed    bool
	stallDone bool // a stalled stream was held (released by Close of the server)
}

func (b *streamBody) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		if b.closed {
			return 0, errClosedBody
		}
		if b.next == len(b.st.ends) {
			if b.st.stalled && !b.stallDone {
				b.stallDone = true
				if !b.s.hold(b.ctx) {
					return 0, b.ctx.Err()
				}
			}
			return 0, io.EOF
		}
		if d := b.st.delay(b.next); d > 0 && !b.s.wait(b.ctx, d) {
			return 0, b.ctx.Err()
		}
		b.pending = b.st.event(b.next)
		b.next++
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

func (b *streamBody) Close() error {
	b.closed = true
	return nil
}

var errClosedBody = errors.New("sim: read on closed response body")
