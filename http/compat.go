package http

import (
	"context"

	"github.com/sluice-llm/sluice/service"
)

// Config is service.Config.
//
// Deprecated: build the service with service.New and serve it with NewServer. Kept so
// that callers written before the service package compile while they move.
type Config = service.Config

// Upstream is service.Route.
//
// Deprecated: use service.Route.
type Upstream = service.Route

// Key is service.Key.
//
// Deprecated: use service.Key.
type Key = service.Key

// HashKey is service.HashKey.
//
// Deprecated: use service.HashKey.
func HashKey(key string) string { return service.HashKey(key) }

// New builds a service from cfg and a Server over it; Server.Close closes the service.
//
// Deprecated: use service.New and NewServer.
func New(ctx context.Context, cfg Config) (*Server, error) {
	svc, err := service.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return NewServer(svc, cfg.Logger), nil
}
