package sluice

import (
	"encoding/json"
	"time"
)

// Endpoints accepted in the url field of a request line, as the OpenAI Batch API spells them.
const (
	EndpointChatCompletions = "/v1/chat/completions"
	EndpointCompletions     = "/v1/completions"
	EndpointEmbeddings      = "/v1/embeddings"
	EndpointResponses       = "/v1/responses"
)

// Endpoints lists every endpoint sluice can send, in a stable order.
var Endpoints = []string{EndpointChatCompletions, EndpointCompletions, EndpointEmbeddings, EndpointResponses}

// Request is one line of a Batch API input file. Body is passed to the upstream unchanged.
type Request struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// Usage is the token usage an upstream reported for one answer.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	// CachedTokens is the part of PromptTokens served from the provider's prompt cache.
	CachedTokens int64 `json:"cached_tokens,omitempty"`
}

// Total is prompt plus completion tokens.
func (u Usage) Total() int64 { return u.PromptTokens + u.CompletionTokens }

// Add returns the sum of u and v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		PromptTokens:     u.PromptTokens + v.PromptTokens,
		CompletionTokens: u.CompletionTokens + v.CompletionTokens,
		CachedTokens:     u.CachedTokens + v.CachedTokens,
	}
}

// Estimate is what a request is expected to cost before it is sent.
type Estimate struct {
	// Model is the body's model field ("" when absent).
	Model string
	// PromptTokens is the prompt counted with the model's tokenizer.
	PromptTokens int64
	// MaxOutputTokens is the request's max_tokens or max_completion_tokens (or
	// max_output_tokens); 0 when the request sets no bound.
	MaxOutputTokens int64
}

// Reserve is the number of tokens a request reserves against a TPM limit: its prompt plus
// its output bound, as OpenAI counts it against the limit.
func (e Estimate) Reserve() int64 { return e.PromptTokens + e.MaxOutputTokens }

// Estimator estimates a request's tokens before it is sent. Implementations must be safe
// for concurrent use.
type Estimator interface {
	Estimate(req *Request) (Estimate, error)
}

// Response is an upstream's HTTP answer to one request.
type Response struct {
	StatusCode int
	// RequestID is the upstream's x-request-id, when it sent one.
	RequestID string
	// Body is the answer's body, passed through unchanged. For an answer that was not JSON
	// (an HTML page from a proxy, say) it is a JSON error object describing it.
	Body json.RawMessage
	// Usage is read from the body's usage object; zero when absent.
	Usage Usage
	// UsageCounted is set when the answer had no usage and Usage was counted by the
	// Upstream itself, from the request and the answer's text (a stream that did not
	// report usage, say).
	UsageCounted bool
	// Limits is what the answer's x-ratelimit-* headers said.
	Limits RateLimits
	// Latency is the time from sending to the last byte of the body.
	Latency time.Duration
	// TTFT is the time from sending to the first token of a streamed answer; 0 when the
	// answer was not streamed.
	TTFT time.Duration
}

// RateLimits is what an upstream's rate-limit headers said about its limits at the moment
// it answered. A zero field means the header was absent.
type RateLimits struct {
	// HasRequests reports whether the request headers (x-ratelimit-*-requests) were present.
	HasRequests       bool
	LimitRequests     int64
	RemainingRequests int64
	ResetRequests     time.Duration
	// HasTokens reports whether the token headers (x-ratelimit-*-tokens) were present.
	HasTokens       bool
	LimitTokens     int64
	RemainingTokens int64
	ResetTokens     time.Duration
}

// Known reports whether any rate-limit header was present.
func (l RateLimits) Known() bool { return l.HasRequests || l.HasTokens }
