package sluice

import (
	"context"
	"time"
)

// Upstream sends requests to one OpenAI-compatible API. Implementations must be safe for
// concurrent use.
type Upstream interface {
	// Do sends req once. It returns a Response for every HTTP answer, whatever its status;
	// for an answer with an error status, or a 2xx answer whose body is not valid JSON, it
	// also returns an *UpstreamError. With no answer at all (connection refused or reset,
	// timeout) it returns a nil Response and an *UpstreamError with StatusCode 0.
	Do(ctx context.Context, req *Request) (*Response, error)
	// BaseURL is the upstream's base URL, for messages.
	BaseURL() string
}

// ModelLister is implemented by upstreams that can list the models they serve.
type ModelLister interface {
	Models(ctx context.Context) ([]string, error)
}

// RateObservation is what a run learned of an upstream's speed, kept in the store so
// that a later plan (a hybrid run deciding when to go online) can count on it.
type RateObservation struct {
	// RPM and TPM are the limits learned from the upstream's headers (0: none learned).
	RPM, TPM float64
	// Latency is the median latency of the run's requests.
	Latency time.Duration
	// At is when the run ended.
	At time.Time
}
