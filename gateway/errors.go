package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// apiError is an answer in the OpenAI error format.
type apiError struct {
	status     int
	typ, code  string
	param      string
	msg        string
	retryAfter time.Duration
}

var (
	errUnauthorized = &apiError{status: http.StatusUnauthorized, typ: "invalid_request_error", code: "invalid_api_key",
		msg: "Incorrect API key provided. Pass a sluice client key as 'Authorization: Bearer KEY'."}
	errQuota = &apiError{status: http.StatusTooManyRequests, typ: "insufficient_quota", code: "insufficient_quota",
		msg: "You exceeded your current quota, please check your plan and billing details. " +
			"This key's budget for the period is spent; GET /v1/usage says when it resets."}
	errNoUpstream = &apiError{status: http.StatusBadGateway, typ: "server_error", code: "upstream_unavailable",
		msg: "No upstream could answer the request."}
)

func invalid(param, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, msg: msg}
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

func writeError(w http.ResponseWriter, e *apiError) {
	body := errorBody{Error: errorObject{Message: e.msg, Type: e.typ}}
	if e.param != "" {
		body.Error.Param = &e.param
	}
	if e.code != "" {
		body.Error.Code = &e.code
	}
	b, _ := json.Marshal(body) // plain strings: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(e.retryAfter.Milliseconds(), 10))
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}
