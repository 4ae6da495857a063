package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// apiError is an error answer, written in OpenAI's shape:
// {"error":{"message":...,"type":...,"param":...,"code":...}}. An empty param or code is
// written as null.
type apiError struct {
	status                    int
	message, typ, param, code string
}

func (e *apiError) appendJSON(b []byte) []byte {
	b = append(b, `{"error":{`...)
	b = appendStringField(b, "message", e.message)
	b = appendStringField(b, "type", e.typ)
	for _, f := range [...]struct{ k, v string }{{"param", e.param}, {"code", e.code}} {
		if f.v == "" {
			b = append(appendKey(b, f.k), "null"...)
		} else {
			b = appendStringField(b, f.k, f.v)
		}
	}
	return append(b, "}}"...)
}

func invalidRequest(param, code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf(format, args...), typ: "invalid_request_error", param: param, code: code}
}

func missingParam(param string) *apiError {
	return invalidRequest(param, "missing_required_parameter", "Missing required parameter: '%s'.", param)
}

// decodeError describes why a body did not decode, as OpenAI would.
func decodeError(err error) *apiError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return invalidRequest(te.Field, "invalid_type", "Invalid type for '%s': expected %s, but got %s instead.", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return invalidRequest("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
}

// jsonKind names the JSON type a Go kind decodes from.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	default:
		return "an object"
	}
}

func modelNotFound(model string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found",
		message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model)}
}

func invalidURL(method, path string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error",
		message: fmt.Sprintf("Invalid URL (%s %s)", method, path)}
}

func invalidAPIKey(sent bool) *apiError {
	msg := "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
	if sent {
		// Unlike OpenAI, no part of the key is echoed back: it could end up in a log.
		msg = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
	}
	return &apiError{status: http.StatusUnauthorized, typ: "invalid_request_error", code: "invalid_api_key", message: msg}
}

func serverError(status int) *apiError {
	msgs := map[int]string{
		500: "The server had an error while processing your request. Sorry about that!",
		502: "Bad gateway.",
		503: "The engine is currently overloaded, please try again later.",
	}
	return &apiError{status: status, typ: "server_error", message: msgs[status]}
}

// rateLimited is the 429 for a refused admission.
func rateLimited(model string, a *admission) *apiError {
	unit := map[string]string{"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}[a.which]
	e := &apiError{status: http.StatusTooManyRequests, typ: a.which, code: "rate_limit_exceeded"}
	if a.tooLarge {
		e.message = fmt.Sprintf("Request too large for %s in organization org-sim on %s: Limit %d, Requested %d. The input or output tokens must be reduced in order to run successfully.",
			model, unit, a.limit, a.need)
		return e
	}
	e.message = fmt.Sprintf("Rate limit reached for %s in organization org-sim on %s: Limit %d, Used %d, Requested %d. Please try again in %s. Visit https://platform.openai.com/account/rate-limits to learn more.",
		model, unit, a.limit, a.used, a.need, formatReset(a.wait))
	return e
}
