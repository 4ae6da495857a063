package sim

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Listener is a simulator served over HTTP on a loopback port.
type Listener struct {
	// Server is the simulator; its Stats and Transport are available through Listener.
	*Server
	// URL is the base URL of the API, "http://127.0.0.1:PORT/v1".
	URL string

	srv  *http.Server
	done chan struct{}
}

// Start creates a simulator with cfg and serves it on a new port of 127.0.0.1.
func Start(cfg Config) (*Listener, error) {
	if cfg.Refuse {
		return startRefusing(New(cfg))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sim: listen: %w", err)
	}
	l := &Listener{
		Server: New(cfg),
		URL:    "http://" + ln.Addr().String() + "/v1",
		done:   make(chan struct{}),
	}
	l.srv = &http.Server{Handler: l.Server, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(l.done)
		// Serve returns ErrServerClosed after Close, and otherwise only when the listener
		// breaks; requests then fail to connect, which is all a caller could learn.
		_ = l.srv.Serve(ln)
	}()
	return l, nil
}

// Close stops the listener: it closes the simulator (releasing hung requests), waits up to
// a few seconds for the requests in flight, then closes every connection. It is
// idempotent.
func (l *Listener) Close() {
	l.Server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		_ = l.srv.Close()
	}
	<-l.done
}
