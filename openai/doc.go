// Package openai is sluice's HTTP upstream: a Client that sends Batch API request bodies,
// unchanged, to any OpenAI-compatible API (OpenAI, DeepSeek, Qwen, gateways, vLLM,
// Ollama) and turns every answer, however messy, into a sluice.Response and, when the
// answer is a failure, a *sluice.UpstreamError the engine can act on.
//
// The Client is also a provider Batch API client (batch.API): UploadFile, CreateBatch,
// Batch, ListBatches, CancelBatch, FileContent, BatchResults and DeleteFile.
// ReadBatchResults parses a batch's output or error file as a stream, leniently (numeric
// error codes, string status codes, bodies sent as JSON strings) and line by line: a line
// cut off by a dropped download is reported as invalid, not as the end of the file.
//
// # Request URLs
//
// A request is sent to Config.BaseURL followed by the request's URL with its leading
// "/v1" removed:
//
//	base https://api.openai.com/v1      + /v1/chat/completions → https://api.openai.com/v1/chat/completions
//	base https://api.deepseek.com/v1/   + /v1/embeddings       → https://api.deepseek.com/v1/embeddings
//	base https://host/api/openai        + /v1/responses        → https://host/api/openai/responses
//	base https://x.azure.com/openai/deployments/d?api-version=2024-10-21
//	                                    + /v1/chat/completions → https://x.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21
//
// So a base URL names the API's root the way the official SDKs take it, /v1 included
// where the provider has one. Models lists the models at the base URL's /models.
//
// # Answers
//
// A 2xx answer with a JSON body is a success: the body is passed on byte for byte, and
// its usage read from usage.prompt_tokens, completion_tokens and
// prompt_tokens_details.cached_tokens (Chat Completions, Completions, Embeddings),
// usage.input_tokens, output_tokens and input_tokens_details.cached_tokens (Responses),
// or DeepSeek's prompt_cache_hit_tokens. A streamed answer (the body asked for
// "stream": true) is assembled into the object the request would have got without
// streaming; see the Client's Do method. A 2xx answer that is empty, not JSON, cut
// short or larger than Config.MaxBodyBytes is an error with Code
// sluice.CodeInvalidResponse, which the engine retries. So is a 2xx answer whose body
// is an error object, a non-empty top-level "error" beside no choices, data or output
// (OpenRouter passes a provider's failure on as a 200 this way; a failed Responses
// answer carries its error there): its error's numeric code, when an HTTP error status,
// stands for the status, so that {"error":{"code":429}} is throttled like a 429 and a 400
// is not retried.
//
// An error status gives both the Response and an *sluice.UpstreamError whose Type, Code
// and Message come from the body in any of the shapes providers use (OpenAI's
// {"error":{...}}, {"error":"text"}, {"message":...}, {"detail":...}, vLLM's
// {"object":"error",...}, arrays, Cloudflare's {"errors":[...]}). A code sent as a
// number is given as its text. A non-JSON body (an nginx or Cloudflare HTML page, plain
// text, nothing) is replaced in the Response by an OpenAI-shaped JSON error object
// quoting its text, so that output files stay valid JSON. An answer that says the model
// does not exist gets Code sluice.CodeModelNotFound, so that the engine stops early
// instead of failing every request; an HTML 404 page (a wrong base URL) does not.
//
// The x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers fill
// Response.Limits, with resets read from Go durations ("6m0s", "20ms"), seconds, Unix
// times or HTTP dates; retry-after-ms and retry-after fill UpstreamError.RetryAfter,
// capped at MaxRetryAfter. A header that does not parse is treated as absent: it never
// fails a request.
//
// With no answer at all, the error has StatusCode 0 and Code sluice.CodeConnection
// (refused, reset, DNS, TLS, a body cut off) or sluice.CodeTimeout (the context's
// deadline passed); a cancelled context gives an error that wraps context.Canceled.
//
// # Secrets
//
// The API key is sent only in the Authorization header. It is not part of any error, of
// the String form of Config or Client, nor of a Response: where an upstream echoes it
// back in a body, it is replaced by "[redacted]". Messages name URLs without their query
// string or credentials.
//
// # Performance
//
// Do sits on sluice's hot path. It reads a body of known length into one exactly sized
// slice and others through pooled buffers, checks the JSON and reads the usage in a
// single decoding pass, and reads headers without re-canonicalising their names.
// NewTransport keeps a connection per concurrent request alive between requests;
// NewTransportFor does too, and sends to a plain-HTTP upstream (a local vLLM, an
// in-house gateway) with sluice's own HTTP/1.1 client, which reads and writes on the
// caller's goroutine instead of net/http's two goroutines per connection.
package openai
