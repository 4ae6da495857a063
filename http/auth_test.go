package http_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
)

// TestAuthenticate: a client key speaks for its tenant, and anything else is refused,
// an admin key included (the service tells it apart; it does not reach the API).
func TestAuthenticate(t *testing.T) {
	const admin = "sk-test-operator"
	h := newHarness(t, sim.Config{Seed: 1}, 2)
	h.cfg.AdminKeyHashes = []string{service.HashKey(admin)}
	h.start()
	tests := []struct {
		name    string
		header  string
		tenant  string
		ok      bool
		isAdmin bool // to the service
		status  int  // of GET /v1/batches
	}{
		{"client key", "Bearer " + keyA, service.HashKey(keyA), true, false, http.StatusOK},
		{"scheme in any case", "bearer " + keyB, service.HashKey(keyB), true, false, http.StatusOK},
		{"admin key", "Bearer " + admin, "", false, true, http.StatusUnauthorized},
		{"unknown key", "Bearer sk-nobody", "", false, false, http.StatusUnauthorized},
		{"no header", "", "", false, false, http.StatusUnauthorized},
		{"not bearer", "Basic " + keyA, "", false, false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/batches", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			tenant, ok := h.srv.Authenticate(r)
			if ok != tt.ok || (tt.ok && tenant != tt.tenant) {
				t.Errorf("Authenticate = %.8s, %v; want %.8s, %v", tenant, ok, tt.tenant, tt.ok)
			}
			if len(tt.header) > 7 {
				if _, _, admin := h.srv.Service().Authenticate(tt.header[7:]); admin != tt.isAdmin {
					t.Errorf("service: admin %v, want %v", admin, tt.isAdmin)
				}
			}
			w := httptest.NewRecorder()
			h.srv.Handler().ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Errorf("GET /v1/batches: %d, want %d", w.Code, tt.status)
			}
		})
	}
}
