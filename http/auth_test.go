package http_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-llm/sluice/service"
	"github.com/sluice-llm/sluice/sim"
)

// TestAuthenticate: a client key speaks for its tenant, an admin key is reported as
// one, and anything else is refused; an admin key alone does not reach the API.
func TestAuthenticate(t *testing.T) {
	const admin = "sk-test-operator"
	h := newHarness(t, sim.Config{Seed: 1}, 2)
	h.cfg.AdminKeyHashes = []string{service.HashKey(admin)}
	h.start()
	tests := []struct {
		name          string
		header        string
		tenant        string
		admin, ok     bool
		apiStatusCode int
	}{
		{"client key", "Bearer " + keyA, service.HashKey(keyA), false, true, http.StatusOK},
		{"scheme in any case", "bearer " + keyB, service.HashKey(keyB), false, true, http.StatusOK},
		{"admin key", "Bearer " + admin, service.HashKey(admin), true, true, http.StatusUnauthorized},
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
			tenant, isAdmin, ok := h.srv.Authenticate(r)
			if ok != tt.ok || isAdmin != tt.admin || (tt.ok && tenant != tt.tenant) {
				t.Errorf("Authenticate = %.8s, admin %v, ok %v; want %.8s, %v, %v", tenant, isAdmin, ok, tt.tenant, tt.admin, tt.ok)
			}
			w := httptest.NewRecorder()
			h.srv.Handler().ServeHTTP(w, r)
			if w.Code != tt.apiStatusCode {
				t.Errorf("GET /v1/batches: %d, want %d", w.Code, tt.apiStatusCode)
			}
		})
	}
}
