package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
)

// TestErrorTable: each service error is answered with its status, the OpenAI type and
// body; what is not a service error never shows its text.
func TestErrorTable(t *testing.T) {
	ptr := func(s string) *string { return &s }
	tests := []struct {
		name   string
		err    error
		status int
		want   errorObject
	}{
		{"invalid, with param", &service.Error{Code: service.EINVALID, Param: "endpoint", Message: "bad"}, 400,
			errorObject{Message: "bad", Type: "invalid_request_error", Param: ptr("endpoint")}},
		{"not found", &service.Error{Code: service.ENOTFOUND, Reason: "not_found", Message: "no"}, 404,
			errorObject{Message: "no", Type: "invalid_request_error", Code: ptr("not_found")}},
		{"conflict, wrapped", fmt.Errorf("cancel: %w", &service.Error{Code: service.ECONFLICT, Reason: "batch_not_cancellable", Message: "final"}), 409,
			errorObject{Message: "final", Type: "invalid_request_error", Code: ptr("batch_not_cancellable")}},
		{"too large", &service.Error{Code: service.ETOOLARGE, Param: "file", Reason: "file_too_large", Message: "big"}, 413,
			errorObject{Message: "big", Type: "invalid_request_error", Param: ptr("file"), Code: ptr("file_too_large")}},
		{"quota", &service.Error{Code: service.EQUOTA, Reason: "insufficient_quota", Message: "spent"}, 429,
			errorObject{Message: "spent", Type: "insufficient_quota", Code: ptr("insufficient_quota")}},
		{"unavailable", &service.Error{Code: service.EUNAVAILABLE, Reason: "shutting_down", Message: "bye"}, 503,
			errorObject{Message: "bye", Type: "server_error", Code: ptr("shutting_down")}},
		{"unknown code", &service.Error{Code: "nonsense", Message: "secret detail"}, 500,
			errorObject{Message: errInternal.Message, Type: "server_error"}},
		{"a store failure", errors.New("disk on fire at /var/secret"), 500,
			errorObject{Message: errInternal.Message, Type: "server_error"}},
		{"a store's not found", fmt.Errorf("object: %w", sluice.ErrNotFound), 404,
			errorObject{Message: "Not found.", Type: "invalid_request_error", Code: ptr("not_found")}},
		{"a body too slow", fmt.Errorf("upload: %w", errTooSlow), 408,
			errorObject{Message: errSlowBody.Message, Type: "invalid_request_error", Code: ptr("request_timeout")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeError(w, tt.err)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, body.Error); d != "" {
				t.Errorf("body (-want +got):\n%s", d)
			}
		})
	}
}

// TestEveryServiceCodeHasAStatus: a code the service may return is in the table.
func TestEveryServiceCodeHasAStatus(t *testing.T) {
	for _, c := range []string{service.EINVALID, service.ENOTFOUND, service.ECONFLICT, service.ETOOLARGE,
		service.EQUOTA, service.ERATELIMIT, service.EUNAVAILABLE, service.EUNAUTHORIZED, service.EINTERNAL} {
		if _, ok := codes[c]; !ok {
			t.Errorf("code %s has no status", c)
		}
	}
}
