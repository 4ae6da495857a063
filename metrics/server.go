package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Server serves a Metrics at Path on its own listener, for commands that have no HTTP
// server of their own (run, pipeline, worker).
type Server struct {
	ln     net.Listener
	hs     *http.Server
	served chan error
}

// Start listens on addr (host:port; port 0 picks a free one) and serves m at Path until
// Shutdown.
func Start(addr string, m *Metrics) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, m.Handler())
	s := &Server{
		ln:     ln,
		hs:     &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		served: make(chan error, 1),
	}
	go func() { s.served <- s.hs.Serve(ln) }()
	return s, nil
}

// Addr is the address the Server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the Server, letting a scrape under way finish until ctx ends, and waits
// for it to stop.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}

// Serve serves m at Path on addr until ctx ends, then shuts the server down within grace.
func Serve(ctx context.Context, addr string, m *Metrics, grace time.Duration) error {
	s, err := Start(addr, m)
	if err != nil {
		return err
	}
	<-ctx.Done()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	return s.Shutdown(shutCtx)
}
