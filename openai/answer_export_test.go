package openai_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/openai"
)

// TestEventError finds the errors a stream's events report, and none in other events.
func TestEventError(t *testing.T) {
	for _, tt := range []struct {
		name, event string
		status      int // of the error, 0 for none
	}{
		{"chunk", "data: {\"choices\":[{\"delta\":{\"content\":\"an error\"}}]}\n\n", 0},
		{"error member", "data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502}}\n\n", 502},
		{"error event", "event: error\ndata: {\"message\":\"overloaded\"}\n\n", 200},
		{"responses failed", "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n", 200},
		{"responses created", "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"error\":null}}\n\n", 0},
		{"comment", ": error soon\n\n", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ue := openai.EventError(http.StatusOK, http.Header{}, []byte(tt.event), time.Now())
			switch {
			case tt.status == 0 && ue != nil:
				t.Fatalf("error %v in an event that reports none", ue)
			case tt.status != 0 && (ue == nil || ue.StatusCode != tt.status):
				t.Fatalf("error %v, want one of status %d", ue, tt.status)
			}
		})
	}
}

// TestAnswerError finds an error object in a 2xx body, and none in an answer.
func TestAnswerError(t *testing.T) {
	for body, status := range map[string]int{
		`{"error":{"message":"Provider returned error","code":429}}`:          429,
		`{"id":"r","object":"response","error":null,"output":[{"type":"x"}]}`: 0,
		`{"choices":[{"message":{"content":"\"error\": none"}}]}`:             0,
		`not json "error"`: 0,
	} {
		ue := openai.AnswerError(http.StatusOK, http.Header{}, []byte(body), time.Now())
		if (ue == nil) != (status == 0) || (ue != nil && ue.StatusCode != status) {
			t.Errorf("%s: error %v, want status %d", body, ue, status)
		}
	}
}
