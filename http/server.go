package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sluice-llm/sluice/internal/logx"
	"github.com/sluice-llm/sluice/service"
)

const maxJSONBody = 1 << 20 // bytes of a JSON request body

// Server serves a service.Service over HTTP: the OpenAI Files and Batches APIs and
// sluice's /v1/usage. It decodes requests, calls the service and encodes its answers;
// the rules are the service's. Create it with NewServer and mount Handler, beside other
// handlers if need be.
type Server struct {
	svc    *service.Service
	mux    *http.ServeMux
	logger *slog.Logger
}

// NewServer returns a Server over svc; logger receives its notices (nil discards them).
// The caller keeps svc and closes it after it stops serving.
func NewServer(svc *service.Service, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, mux: http.NewServeMux(), logger: logger}
	s.routes()
	return s
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Service returns the service the server serves.
func (s *Server) Service() *service.Service { return s.svc }

// Close closes the service: see service.Service.Close. Stop serving HTTP before calling
// it.
func (s *Server) Close(ctx context.Context) error { return s.svc.Close(ctx) }

// Authenticate reads the request's "Authorization: Bearer KEY", for handlers mounted
// beside the API (the dashboard): ok when the key is a client key or an admin key of the
// service, admin when it is an admin key, and tenant the tenant a client key speaks for
// (the key's hash).
func (s *Server) Authenticate(r *http.Request) (tenant string, admin bool, ok bool) {
	key, found := bearer(r)
	if !found {
		return "", false, false
	}
	tenant, client, admin := s.svc.Authenticate(key)
	return tenant, admin, client || admin
}

// bearer returns the request's bearer key.
func bearer(r *http.Request) (string, bool) {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(key), true
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.handle("POST /v1/files", s.createFile)
	s.handle("GET /v1/files", s.listFiles)
	s.handle("GET /v1/files/{id}", s.getFile)
	s.handle("GET /v1/files/{id}/content", s.fileContent)
	s.handle("DELETE /v1/files/{id}", s.deleteFile)
	s.handle("POST /v1/batches", s.createBatch)
	s.handle("GET /v1/batches", s.listBatches)
	s.handle("GET /v1/batches/{id}", s.getBatch)
	s.handle("POST /v1/batches/{id}/cancel", s.cancelBatch)
	s.handle("GET /v1/usage", s.getUsage)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &service.Error{Code: service.ENOTFOUND, Reason: "unknown_url",
			Message: fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, r.URL.Path)})
	})
}

// handlerFunc is an API handler: it serves the client of the given tenant and returns an
// error to be answered in the OpenAI error format.
type handlerFunc func(w http.ResponseWriter, r *http.Request, tenant string) error

// handle registers h behind the client key check.
func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		key, found := bearer(r)
		tenant, client, _ := s.svc.Authenticate(key)
		if !found || !client {
			writeError(w, errUnauthorized)
			return
		}
		if err := h(w, r, tenant); err != nil {
			s.logError(r, err)
			writeError(w, err)
		}
	})
}

// logError logs what a handler failed with: a client too slow at info, a client that
// went away at debug (its doing, not the server's), a failure of the server at error;
// the client's own mistakes not at all.
func (s *Server) logError(r *http.Request, err error) {
	_, status := asServiceError(err)
	switch {
	case errors.Is(err, errTooSlow):
		s.logger.Info("client too slow", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	case status < 500:
	case r.Context().Err() != nil || logx.ClientGone(err):
		s.logger.Debug("client went away", "method", r.Method, "path", r.URL.Path, "err", err)
	default:
		s.logger.Error("serve", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}
