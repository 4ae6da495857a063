package openai

import (
	"bytes"
	"net/http"
	"time"

	"github.com/sluice-llm/sluice"
)

var (
	errorName = []byte(`"error"`) // the member an error answer or event has
	errorWord = []byte("error")   // in an error event's name or data
)

// AnswerError returns the error of a 2xx answer of status whose body is an error object,
// as the Client reads it (OpenRouter's 200 {"error":{"message","code":502}}, a failed
// Responses answer): a numeric code 400–599 stands for that status (its RetryAfter read
// from h), any other keeps status. It returns nil for any other body: an answer, or one
// that is not JSON. For proxies that relay answers themselves (the gateway); a body with
// no "error" key costs one search.
func AnswerError(status int, h http.Header, body []byte, now time.Time) *sluice.UpstreamError {
	if !bytes.Contains(body, errorName) {
		return nil
	}
	if _, errValue, err := decodeAnswer(body); err == nil && errValue != nil {
		return infoError(status, parseErrorBody(body), h, now)
	}
	return nil
}

// EventError returns the error a server-sent event (its lines as sent) of a 2xx stream
// reports, as the Client reads it: an error event, a chunk with an error member, or a
// failed Responses answer, its status read as AnswerError reads it; nil for any other
// event. An event without the word "error" costs one search.
func EventError(status int, h http.Header, event []byte, now time.Time) *sluice.UpstreamError {
	if !bytes.Contains(event, errorWord) {
		return nil
	}
	var ue *sluice.UpstreamError
	_ = forEachEvent(event, func(name string, payload []byte) error {
		if ue == nil {
			ue = payloadError(status, h, name, bytes.TrimSpace(payload), now)
		}
		return nil
	})
	return ue
}

// payloadError is EventError for one event's name and data.
func payloadError(status int, h http.Header, name string, payload []byte, now time.Time) *sluice.UpstreamError {
	if name != "error" && !bytes.Contains(payload, errorName) {
		return nil
	}
	var c chunk
	if decodeChunk(payload, &c) == nil {
		if se := eventError(name, &c, payload); se != nil {
			return infoError(status, se.info, h, now)
		}
	}
	return nil
}
