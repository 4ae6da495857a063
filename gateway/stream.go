package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/openai"
)

// streamWriteTimeout is how long a client has to take each event of a stream. It replaces
// any deadline the server set from its average rate: a model that writes slowly for
// minutes must not have its stream cut for being slow.
const streamWriteTimeout = time.Minute

// readerPool holds the readers of streamed answers.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// maxHeld bounds the events held back before a stream's first content: past it, the
// stream is relayed with no failover.
const maxHeld = 64 << 10

// streamRelay passes a server-sent event stream to the client event by event, flushing
// whenever nothing more has arrived, and reads the usage the stream reported. With
// dropUsage (the gateway asked for the usage, not the client) the usage-only chunk is
// kept from the client. The events up to the first one with content are held back
// (hold), so that a stream that fails before its content can be failed over from with
// nothing sent: one whose first data event is an error, or comes after the chunks that
// carry only a role (see hasContent).
type streamRelay struct {
	br        *bufio.Reader
	ev, held  *bytes.Buffer
	dropUsage bool
	status    int         // the stream's status,
	header    http.Header // and headers, for the error an event reports
	start     time.Time

	usage sluice.Usage
	// failed is the first error an event reported (openai.EventError).
	failed *sluice.UpstreamError
	// content is set once an event with content was read (hasContent); readErr is the
	// read error that ended the stream while events were held (io.EOF at its end).
	content bool
	readErr error
	// cut is the read error that ended the stream after its events were sent to the
	// client, other than io.EOF: the upstream's connection broke.
	cut error
}

func newStreamRelay(resp *http.Response, dropUsage bool, start time.Time) *streamRelay {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(resp.Body)
	return &streamRelay{br: br, ev: getBuf(), held: getBuf(), dropUsage: dropUsage,
		status: resp.StatusCode, header: resp.Header, start: start}
}

// free returns the relay's buffers to their pools.
func (s *streamRelay) free() {
	s.br.Reset(nil)
	readerPool.Put(s.br)
	putBuf(s.ev)
	putBuf(s.held)
}

// hold reads the stream up to its first event with content or error (or its end, or
// maxHeld bytes), holding the events back, and returns the error that the events read
// report, if any.
func (s *streamRelay) hold() *sluice.UpstreamError {
	for !s.content && s.failed == nil && s.readErr == nil && s.held.Len() < maxHeld {
		s.readErr = s.next(func(ev []byte) error {
			s.held.Write(ev)
			return nil
		})
	}
	return s.failed
}

// broken returns the error of a stream that broke (a read error, not its end) while its
// events were held, before any content: nil when it did not.
func (s *streamRelay) broken() *sluice.UpstreamError {
	if s.content || s.readErr == nil || errors.Is(s.readErr, io.EOF) {
		return nil
	}
	return &sluice.UpstreamError{StatusCode: s.status, Code: sluice.CodeConnection,
		Message: "stream broke before its first content: " + s.readErr.Error(), Err: s.readErr}
}

// relay writes the events held and relays the rest of the stream.
func (s *streamRelay) relay(w http.ResponseWriter) error {
	rc := http.NewResponseController(w)
	write := func(ev []byte) error {
		if _, err := w.Write(ev); err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return nil
	}
	err := s.readErr
	if s.held.Len() > 0 {
		if werr := write(s.held.Bytes()); werr != nil {
			return werr
		}
	}
	for err == nil {
		if s.br.Buffered() == 0 {
			if ferr := rc.Flush(); ferr != nil {
				return ferr
			}
		}
		err = s.next(write)
	}
	_ = rc.Flush()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// read reads the stream's next line; it notes a read error that is not the stream's end
// in cut.
func (s *streamRelay) read() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
		s.cut = err
	}
	return line, err
}

// next reads the next event (or what is left of the stream at its end) and passes it to
// out unless it is kept from the client; it returns the read's error, or out's.
func (s *streamRelay) next(out func([]byte) error) error {
	s.ev.Reset()
	for {
		line, err := s.read()
		s.ev.Write(line)
		if errors.Is(err, bufio.ErrBufferFull) || (err == nil && !blank(line)) {
			continue
		}
		if s.ev.Len() > 0 && s.inspect(s.ev.Bytes()) {
			if werr := out(s.ev.Bytes()); werr != nil {
				return werr
			}
		}
		return err
	}
}

// inspect reads what an event says (its usage, an error) and whether it goes to the
// client.
func (s *streamRelay) inspect(ev []byte) bool {
	if !s.content {
		s.content = hasContent(ev)
	}
	if s.failed == nil {
		s.failed = openai.EventError(s.status, s.header, ev, s.start)
	}
	return inspectEvent(ev, &s.usage, s.dropUsage)
}

// hasContent reports whether an event says something to the client that cannot be
// taken back: a data event other than those a stream opens with before its content (a
// chunk whose choices have only a role and empty fields, as OpenAI, vLLM and most relays
// send first; a chunk with no choices and no usage, as Azure's prompt_filter_results;
// the Responses API's response.created and response.in_progress). Comments and events
// without data have none; a data event that is not one JSON object ([DONE]) has.
func hasContent(ev []byte) bool {
	if !bytes.HasPrefix(ev, dataField[1:]) && !bytes.Contains(ev, dataField) {
		return false
	}
	data := eventData(ev)
	if data == nil {
		return true
	}
	root := gjson.Parse(str(data))
	if !root.IsObject() {
		return true
	}
	switch root.Get("type").Str {
	case "response.created", "response.in_progress":
		return false
	}
	choices := root.Get("choices")
	if !choices.IsArray() || !isEmpty(root.Get("usage")) || root.Get("error").Exists() {
		return true
	}
	empty := true
	choices.ForEach(func(_, c gjson.Result) bool {
		empty = emptyChoice(c)
		return empty
	})
	return !empty
}

// emptyChoice reports whether a streamed choice says nothing: an index, a delta with at
// most a role, and members that are null or empty.
func emptyChoice(c gjson.Result) bool {
	empty := c.IsObject()
	c.ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "index":
		case "delta":
			v.ForEach(func(k, dv gjson.Result) bool {
				empty = k.Str == "role" || isEmpty(dv)
				return empty
			})
		default:
			empty = isEmpty(v)
		}
		return empty
	})
	return empty
}

// isEmpty reports whether v is absent, null, "", [] or {}.
func isEmpty(v gjson.Result) bool {
	switch v.Type {
	case gjson.Null:
		return true
	case gjson.String:
		return v.Str == ""
	case gjson.JSON:
		empty := true
		v.ForEach(func(_, _ gjson.Result) bool {
			empty = false
			return false
		})
		return empty
	}
	return false
}

func blank(line []byte) bool {
	return len(line) == 1 || (len(line) == 2 && line[0] == '\r')
}

var (
	usageMember = []byte(`"usage"`)
	dataField   = []byte("\ndata:") // a data line, but the event's first
)

// inspectEvent reads the usage an event reports, if any, into u, and says whether the
// event goes to the client.
func inspectEvent(ev []byte, u *sluice.Usage, dropUsage bool) bool {
	if !bytes.Contains(ev, usageMember) {
		return true
	}
	data := eventData(ev)
	if data == nil {
		return true
	}
	usage := gjson.GetBytes(data, "usage")
	if !usage.IsObject() {
		usage = gjson.GetBytes(data, "response.usage") // the Responses API's response.completed
	}
	if usage.IsObject() {
		u.PromptTokens, u.CompletionTokens, u.CachedTokens = readUsage(usage)
		if dropUsage {
			if ch := gjson.GetBytes(data, "choices"); ch.IsArray() && len(ch.Array()) == 0 {
				return false
			}
		}
	}
	return true
}

// eventData returns the data of an event's single data line (nil when none or several).
func eventData(ev []byte) []byte {
	var data []byte
	for len(ev) > 0 {
		line := ev
		if i := bytes.IndexByte(ev, '\n'); i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		line = bytes.TrimRight(line, "\r")
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if data != nil {
				return nil
			}
			data = bytes.TrimLeft(d, " ")
		}
	}
	return data
}
