package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
)

// codeTooSlow is the transport's own code of a request body that arrived too slowly
// (conns.go): the service never sees such a request.
const codeTooSlow = "too_slow"

// codes maps each error code to the HTTP status and the OpenAI error type it is answered
// with: the only place a status is chosen for an error.
var codes = map[string]struct {
	status int
	typ    string
}{
	service.EINVALID:      {http.StatusBadRequest, "invalid_request_error"},
	service.EUNAUTHORIZED: {http.StatusUnauthorized, "invalid_request_error"},
	service.ENOTFOUND:     {http.StatusNotFound, "invalid_request_error"},
	service.ECONFLICT:     {http.StatusConflict, "invalid_request_error"},
	service.ETOOLARGE:     {http.StatusRequestEntityTooLarge, "invalid_request_error"},
	service.EQUOTA:        {http.StatusTooManyRequests, "insufficient_quota"},
	service.ERATELIMIT:    {http.StatusTooManyRequests, "requests"},
	service.EUNAVAILABLE:  {http.StatusServiceUnavailable, "server_error"},
	service.EINTERNAL:     {http.StatusInternalServerError, "server_error"},
	codeTooSlow:           {http.StatusRequestTimeout, "invalid_request_error"},
}

// Errors of the transport, before any service call.
var (
	errUnauthorized = &service.Error{Code: service.EUNAUTHORIZED, Reason: "invalid_api_key",
		Message: "Incorrect API key provided. Pass a sluice client key as 'Authorization: Bearer KEY'."}
	errSlowBody = &service.Error{Code: codeTooSlow, Reason: "request_timeout",
		Message: "The request body arrived too slowly."}
	errInternal = &service.Error{Code: service.EINTERNAL,
		Message: "The server had an error while processing your request."}
)

// asServiceError maps err to what the client is told: service errors as they are, the
// transport's own failures (a body too large or too slow) as the service error they
// amount to, a store's sluice.ErrNotFound as ENOTFOUND, and anything else as EINTERNAL
// without its cause. It also returns the status.
func asServiceError(err error) (*service.Error, int) {
	var e *service.Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &tooLarge):
		e = &service.Error{Code: service.ETOOLARGE, Reason: "request_too_large",
			Message: fmt.Sprintf("The request body is larger than %d bytes.", tooLarge.Limit)}
	case errors.Is(err, errTooSlow):
		e = errSlowBody
	case errors.Is(err, sluice.ErrNotFound):
		e = &service.Error{Code: service.ENOTFOUND, Reason: "not_found", Message: "Not found."}
	default:
		e = errInternal
	}
	if _, ok := codes[e.Code]; !ok {
		e = errInternal
	}
	return e, codes[e.Code].status
}

type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// writeError answers err as the OpenAI error body {"error":{...}}.
func writeError(w http.ResponseWriter, err error) {
	e, status := asServiceError(err)
	body := errorBody{Error: errorObject{Message: e.Message, Type: codes[e.Code].typ}}
	if e.Param != "" {
		body.Error.Param = &e.Param
	}
	if e.Reason != "" {
		body.Error.Code = &e.Reason
	}
	writeJSON(w, status, body)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"encode the answer","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeJSON reads r's body, at most maxJSONBody bytes, into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return &service.Error{Code: service.EINVALID, Message: fmt.Sprintf("We could not parse the JSON body of your request: %v", err)}
	}
	return nil
}
