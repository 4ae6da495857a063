package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/sluice-llm/sluice"
)

// apiError is an error answered with an HTTP status and the OpenAI error body.
type apiError struct {
	status int
	typ    string
	param  string
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

var errUnauthorized = &apiError{status: http.StatusUnauthorized, typ: "invalid_request_error", code: "invalid_api_key",
	msg: "Incorrect API key provided. Pass a sluice client key as 'Authorization: Bearer KEY'."}

func invalid(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, msg: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "not_found",
		msg: fmt.Sprintf("No %s found with id '%s'.", kind, id)}
}

// asAPIError maps err to what the client is told: apiErrors as they are, an oversized
// body as 413, anything else as a 500 that does not leak the cause.
func asAPIError(err error) *apiError {
	var api *apiError
	if errors.As(err, &api) {
		return api
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "request_too_large",
			msg: fmt.Sprintf("The request body is larger than %d bytes.", tooLarge.Limit)}
	}
	if errors.Is(err, sluice.ErrNotFound) {
		return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "not_found", msg: "Not found."}
	}
	return &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "The server had an error while processing your request."}
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

func writeError(w http.ResponseWriter, err error) {
	api := asAPIError(err)
	body := errorBody{Error: errorObject{Message: api.msg, Type: api.typ}}
	if api.param != "" {
		body.Error.Param = &api.param
	}
	if api.code != "" {
		body.Error.Code = &api.code
	}
	writeJSON(w, api.status, body)
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
		return invalid("", "We could not parse the JSON body of your request: %v", err)
	}
	return nil
}
