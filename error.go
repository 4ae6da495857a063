package sluice

import (
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors. Callers test for them with errors.Is.
var (
	// ErrNotFound is returned by a Store for a job that does not exist.
	ErrNotFound = newSentinel("not found")
	// ErrAuth means the upstream rejected the API key.
	ErrAuth = newSentinel("API key rejected")
	// ErrQuota means the upstream said the account's quota or credit is used up
	// (a 429 with code insufficient_quota): no retry can help.
	ErrQuota = newSentinel("quota exhausted")
	// ErrUnknownModel means the upstream does not serve a requested model.
	ErrUnknownModel = newSentinel("unknown model")
	// ErrUnreachable means the upstream gave no answer at all (connection refused,
	// unknown host) for Config.UnreachableAfter before it ever answered.
	ErrUnreachable = newSentinel("upstream unreachable")
	// ErrEndpointNotFound means the upstream answers 404 to every path, the requests' and
	// its model list's: its base URL is most likely wrong (a missing /v1, say).
	ErrEndpointNotFound = newSentinel("endpoint not found")
	// ErrAborted wraps the reason a run stopped before every request was final.
	ErrAborted = newSentinel("run aborted")
	// ErrBudgetExhausted means a run stopped dispatching because the next request could
	// have taken the job past its Budget.
	ErrBudgetExhausted = newSentinel("budget exhausted")
	// ErrInterrupted means a run was stopped by its caller (Drain or a cancelled context).
	ErrInterrupted = newSentinel("run interrupted")
	// ErrFailed wraps sluice's own failure that stopped a run: the ledger could not be
	// written (a full disk, say) or the input could not be read.
	ErrFailed = newSentinel("run failed")
)

// sentinel is one of sluice's sentinel errors. Its message names the package ("sluice:
// API key rejected"), as an error handed to a caller does; its reason does not, for the
// record of a job that it stopped, which is sluice's already (see Run's reason).
type sentinel struct{ reason string }

func newSentinel(reason string) error { return &sentinel{reason: reason} }

func (e *sentinel) Error() string { return "sluice: " + e.reason }

// Error codes sluice puts in output lines for requests that got no usable HTTP answer.
const (
	CodeInvalidRequest  = "invalid_request" // the input line was not a valid request
	CodeDuplicateID     = "duplicate_custom_id"
	CodeConnection      = "connection_error" // no answer: refused, reset, DNS
	CodeTimeout         = "timeout"          // no complete answer within the request timeout
	CodeInvalidResponse = "invalid_response" // a 2xx answer whose body was not valid JSON (truncated)
	CodeModelNotFound   = "model_not_found"
	// CodeInsufficientQuota is OpenAI's code for a 429 that is about billing, not rate.
	CodeInsufficientQuota = "insufficient_quota"
	CodeAborted           = "run_aborted"
)

// UpstreamError is a failed attempt to send one request: either an HTTP answer with an error
// status, or no usable answer at all (StatusCode 0, or a 2xx with an invalid body).
type UpstreamError struct {
	// StatusCode is the HTTP status, 0 when there was no answer.
	StatusCode int
	// Type, Code and Message come from the OpenAI error body when there was one. Code is a
	// string even when the upstream sent a number.
	Type    string
	Code    string
	Message string
	// RetryAfter is how long the upstream asked to wait (retry-after-ms or retry-after),
	// 0 when it did not say.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any.
	Err error
}

func (e *UpstreamError) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	switch {
	case e.StatusCode == 0 && e.Code != "":
		return fmt.Sprintf("upstream %s: %s", e.Code, msg)
	case e.StatusCode == 0:
		return "upstream: " + msg
	case msg == "":
		return fmt.Sprintf("upstream status %d", e.StatusCode)
	default:
		return fmt.Sprintf("upstream status %d: %s", e.StatusCode, msg)
	}
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// Retryable reports whether sending the same request again may succeed: connection errors,
// timeouts, invalid bodies, 408, 409, 429 and 5xx are; other statuses are not, and
// neither is a 429 whose code says the account's quota is used up.
func (e *UpstreamError) Retryable() bool {
	switch {
	case e.StatusCode == 0:
		return true
	case e.StatusCode >= 200 && e.StatusCode < 300: // a 2xx with an unusable body
		return true
	case e.Code == CodeInsufficientQuota:
		return false
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusConflict,
		e.StatusCode == http.StatusTooManyRequests, e.StatusCode >= 500:
		return true
	default:
		return false
	}
}

// Throttled reports whether the upstream answered 429 Too Many Requests.
func (e *UpstreamError) Throttled() bool { return e.StatusCode == http.StatusTooManyRequests }

// LineError is a problem with one line of an input file.
type LineError struct {
	Line  int64  // 1-based line number
	Field string // the JSON field at fault, "" for the line as a whole
	Msg   string
}

func (e *LineError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Msg)
}

// abortError is a run stopped by a fatal upstream answer: it is ErrAborted, and its
// cause. The cause is always one of sluice's errors that says what was fatal (ErrAuth,
// ErrQuota, ErrUnknownModel, ErrUnreachable, ErrEndpointNotFound) and names the package
// already, so the message is the cause's: "sluice: API key rejected by …", where
// wrapping it in ErrAborted's text said "sluice: run aborted: sluice: API key …".
type abortError struct{ cause error }

func (e *abortError) Error() string   { return e.cause.Error() }
func (e *abortError) Unwrap() []error { return []error{ErrAborted, e.cause} }
