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

// maxHeld bounds the events held back before a stream's first data event: past it, the
// stream is relayed with no failover.
const maxHeld = 64 << 10

// streamRelay passes a server-sent event stream to the client event by event, flushing
// whenever nothing more has arrived, and reads the usage the stream reported. With
// dropUsage (the gateway asked for the usage, not the client) the usage-only chunk is
// kept from the client. The events up to the first data event are held back (hold), so
// that a stream whose first event is an error can be failed over from with nothing sent.
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
	// data is set once a data event was read; readErr is the read error that ended the
	// stream while events were held (io.EOF at its end).
	data    bool
	readErr error
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

// hold reads the stream up to its first data event (or its end, or maxHeld bytes),
// holding the events back, and returns the error that the events read report, if any.
func (s *streamRelay) hold() *sluice.UpstreamError {
	for !s.data && s.readErr == nil && s.held.Len() < maxHeld {
		s.readErr = s.next(func(ev []byte) error {
			s.held.Write(ev)
			return nil
		})
	}
	return s.failed
}

// broken returns the error of a stream that broke (a read error, not its end) while its
// events were held, before any data: nil when it did not.
func (s *streamRelay) broken() *sluice.UpstreamError {
	if s.data || s.readErr == nil || errors.Is(s.readErr, io.EOF) {
		return nil
	}
	return &sluice.UpstreamError{StatusCode: s.status, Code: sluice.CodeConnection,
		Message: "stream broke before its first data: " + s.readErr.Error(), Err: s.readErr}
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

// next reads the next event (or what is left of the stream at its end) and passes it to
// out unless it is kept from the client; it returns the read's error, or out's.
func (s *streamRelay) next(out func([]byte) error) error {
	s.ev.Reset()
	for {
		line, err := s.br.ReadSlice('\n')
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
	if !s.data {
		s.data = bytes.HasPrefix(ev, dataField[1:]) || bytes.Contains(ev, dataField)
	}
	if s.failed == nil {
		s.failed = openai.EventError(s.status, s.header, ev, s.start)
	}
	return inspectEvent(ev, &s.usage, s.dropUsage)
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
