package openai

import (
	"bytes"
	"strings"
)

// looksLikeStream reports whether a body that is not JSON starts like a server-sent
// event stream, for upstreams that stream without the text/event-stream content type.
func looksLikeStream(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return bytes.HasPrefix(data, []byte("data:")) || bytes.HasPrefix(data, []byte("event:")) ||
		bytes.HasPrefix(data, []byte(":"))
}

// isEventStream reports whether a content type is text/event-stream.
func isEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// forEachEvent calls fn for every event in a server-sent event stream, with the event's
// name ("" when it has none) and its data lines joined by "\n". An event still open when
// the stream ends is passed on too: whether it is whole is for fn to judge.
func forEachEvent(data []byte, fn func(name string, payload []byte) error) error {
	var (
		name    string
		payload []byte // one data line aliases data; several are joined into joined
		joined  []byte
		lines   int
	)
	dispatch := func() error {
		defer func() { name, payload, joined, lines = "", nil, joined[:0], 0 }()
		if lines == 0 {
			return nil
		}
		return fn(name, payload)
	}
	for len(data) > 0 {
		var line []byte
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			line, data = data, nil
		} else {
			line = data[:i]
			if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			data = data[i+1:]
		}
		if len(line) == 0 {
			if err := dispatch(); err != nil {
				return err
			}
			continue
		}
		if line[0] == ':' { // a comment, such as a keep-alive
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			switch lines {
			case 0:
				payload = value
			case 1:
				joined = append(append(append(joined[:0], payload...), '\n'), value...)
				payload = joined
			default:
				joined = append(append(joined, '\n'), value...)
				payload = joined
			}
			lines++
		case "event":
			name = string(value)
		}
	}
	return dispatch()
}
