package service

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWebhookRetries: a webhook's answer is retried as the engine retries an upstream's
// (408, 409, 429, 5xx), and any other failure ends the delivery.
func TestWebhookRetries(t *testing.T) {
	s, _ := newLockService(t)
	for _, tt := range []struct {
		status      int
		retry, fail bool
	}{
		{http.StatusOK, false, false},
		{http.StatusNoContent, false, false},
		{http.StatusBadRequest, false, true},
		{http.StatusNotFound, false, true},
		{http.StatusRequestTimeout, true, true},
		{http.StatusConflict, true, true},
		{http.StatusTooManyRequests, true, true},
		{http.StatusBadGateway, true, true},
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.status) }))
		retry, err := s.post(ts.URL, []byte("{}"))
		ts.Close()
		if retry != tt.retry || (err != nil) != tt.fail {
			t.Errorf("%d: retry %v, err %v; want retry %v, failed %v", tt.status, retry, err, tt.retry, tt.fail)
		}
	}
}
