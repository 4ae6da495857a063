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
)

// streamWriteTimeout is how long a client has to take each event of a stream. It replaces
// any deadline the server set from its average rate: a model that writes slowly for
// minutes must not have its stream cut for being slow.
const streamWriteTimeout = time.Minute

// readerPool holds the readers of streamed answers.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// relayStream passes a server-sent event stream to the client event by event, flushing
// whenever nothing more has arrived, and returns the usage the stream reported. With
// dropUsage (the gateway asked for the usage, not the client) the usage-only chunk is
// kept from the client.
func relayStream(w http.ResponseWriter, body io.Reader, dropUsage bool) (sluice.Usage, error) {
	rc := http.NewResponseController(w)
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(body)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	ev := getBuf()
	defer putBuf(ev)
	var u sluice.Usage
	for {
		line, err := br.ReadSlice('\n')
		ev.Write(line)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil && !blank(line) {
			continue
		}
		// An event ended (or the stream did).
		if ev.Len() > 0 {
			if keep := inspectEvent(ev.Bytes(), &u, dropUsage); keep {
				if _, werr := w.Write(ev.Bytes()); werr != nil {
					return u, werr
				}
				_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			}
			ev.Reset()
		}
		if err != nil {
			_ = rc.Flush()
			if errors.Is(err, io.EOF) {
				return u, nil
			}
			return u, err
		}
		if br.Buffered() == 0 {
			if ferr := rc.Flush(); ferr != nil {
				return u, ferr
			}
		}
	}
}

func blank(line []byte) bool {
	return len(line) == 1 || (len(line) == 2 && line[0] == '\r')
}

var usageMember = []byte(`"usage"`)

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
