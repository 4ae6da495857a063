package service

import (
	"errors"
	"fmt"
)

// Error codes: what kind of failure an Error is. They are generic on purpose, so that an
// adapter maps each to its own vocabulary (http/ maps them to status codes in one
// table); Error.Reason says more, in the OpenAI error body's "code" form.
const (
	// EINVALID: the request is malformed or breaks a rule (a missing field, an unknown
	// endpoint, a file of the wrong purpose).
	EINVALID = "invalid"
	// ENOTFOUND: no such object, or not the tenant's.
	ENOTFOUND = "not_found"
	// ECONFLICT: the object is not in a state that allows the operation (cancelling a
	// completed batch).
	ECONFLICT = "conflict"
	// ETOOLARGE: the content is larger than the service accepts.
	ETOOLARGE = "too_large"
	// EQUOTA: the tenant's budget for the period is spent.
	EQUOTA = "quota"
	// ERATELIMIT: the tenant sends faster than its limits allow; retry later.
	ERATELIMIT = "rate_limit"
	// EUNAVAILABLE: the service cannot take the request now (it is shutting down).
	EUNAVAILABLE = "unavailable"
	// EUNAUTHORIZED: the caller presented no valid key.
	EUNAUTHORIZED = "unauthorized"
	// EINTERNAL: anything else; its cause is for the operator's log, not the caller.
	EINTERNAL = "internal"
)

// Error is a failure the service reports to its caller: a code, a message a client may
// read, and optionally the request field at fault and a finer machine-readable reason.
// Any other error a method returns (a store or disk failure) is internal: it is for the
// operator's log, and callers answer it as EINTERNAL without its text.
type Error struct {
	// Code is one of the E* constants.
	Code string
	// Message is meant for the client.
	Message string
	// Param names the request field at fault, when there is one ("input_file_id").
	Param string
	// Reason is the OpenAI error "code" ("batch_not_cancellable", "insufficient_quota");
	// "" when the Code says it all.
	Reason string
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("service: %s (%s): %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("service: %s: %s", e.Code, e.Message)
}

// Errorf returns an Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err's Error, EINTERNAL when it has none, "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return EINTERNAL
}

// invalid is an EINVALID Error about param.
func invalid(param, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Param: param, Message: fmt.Sprintf(format, args...)}
}

// notFound is the ENOTFOUND Error of an object of kind with id.
func notFound(kind, id string) *Error {
	return &Error{Code: ENOTFOUND, Reason: "not_found", Message: fmt.Sprintf("No %s found with id '%s'.", kind, id)}
}

// Errors the service returns as they are.
var (
	errClosing = &Error{Code: EUNAVAILABLE, Reason: "shutting_down",
		Message: "The server is shutting down; retry against the next one."}
	errQuota = &Error{Code: EQUOTA, Reason: codeInsufficientQuota, Message: msgQuota}
)

// isNotFound reports whether err is an ENOTFOUND Error.
func isNotFound(err error) bool { return ErrorCode(err) == ENOTFOUND }
