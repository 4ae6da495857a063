// Package gateway is sluice serve's online gateway: it proxies the OpenAI API's
// generation endpoints (chat completions, completions, embeddings, responses) to the
// configured upstreams for the same client keys as the batch API, streaming included,
// and lists their models.
//
// # Routing
//
// A request is routed by its model, after Config.Aliases rename it, to the upstreams
// that serve it (those naming it first, then those serving every model), in an order
// drawn by their weights, then to its Config.Fallbacks. It moves on to the next after
// no answer, a 5xx, a 429, an open circuit breaker or a rate limiter that would make it
// wait past Config.QueueWait, as long as nothing was sent to the client: an answer that
// started is never asked for again. A 2xx whose body is an error object, or a stream
// that reports an error or breaks before its first content (the chunks that carry only
// a role are held back), is a failure too (openai.AnswerError, openai.EventError): moved
// on from, or from the last place relayed with the status its
// code stands for (502 without one), a stream as it is. The last place's answer is
// relayed whatever it is.
//
// # Limits and budgets
//
// An upstream with an Engine sends through the engine's breaker and limiter
// (sluice.Engine.Admit), so that the limits learned by online and batch traffic are one
// and online requests go first. A key's budget (Config.Budget) is reserved before the
// request is sent and settled with its usage, from the same pool as its batches; a key
// may also have its own RPM and TPM. Usage goes in the serve ledger per key, user (the
// request's "user" field) and day, with the number of requests and of cache hits.
//
// # Bodies
//
// Request and answer bodies pass through as bytes: the model, stream and user fields
// are read with a scanner, never decoded, and a streamed answer is relayed event by
// event with a flush whenever nothing more has arrived.
//
// # Upstream connections
//
// A plain-HTTP upstream reached without a proxy, with no Transport configured, is sent
// to over a pool of HTTP/1.1 keep-alive connections of its own, written and read by the
// request's goroutine (net/http's Transport gives each connection a writing and a
// reading goroutine, about a quarter of the gateway's CPU on loopback). A connection is
// reused once its answer was read to its end; a request that finds its idle connection
// closed by the server before any byte of the answer is sent once more on a new one.
// https upstreams, and any configured Config.Transport, go through net/http.
//
// # Cache
//
// With Config.Cache, a non-streamed request that is deterministic (temperature 0 or a
// seed) is answered from the cache when the same body was answered 200 within
// Config.CacheTTL; a hit costs nothing, is marked "x-sluice-cache: hit" and is counted
// in usage as a cache hit.
package gateway
