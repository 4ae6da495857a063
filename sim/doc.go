// Package sim is an OpenAI-compatible API simulator with a latency model, hidden rate
// limits and seeded fault injection, for tests, benchmarks and trying sluice without a
// provider.
//
// A [Server] is an http.Handler: serve it on any listener, use [Start] to serve it on a
// loopback port, or call it in-process through [Server.Transport], with no sockets.
//
// # Endpoints
//
//   - POST /v1/chat/completions, also streamed (stream: true) as server-sent events with
//     a usage chunk when stream_options.include_usage is set
//   - POST /v1/completions, also streamed
//   - POST /v1/embeddings: deterministic unit vectors derived from the model and the
//     input, dimensions and encoding_format (float, base64) honoured
//   - POST /v1/responses: a response object with one output message (not streamed)
//   - GET /v1/models and GET /v1/models/{model}
//
// Answers have OpenAI's shapes, an x-request-id header, and errors are always
// {"error":{"message","type","param","code"}}.
//
// # Answers
//
// An answer echoes the request: the text of the last user message (chat, responses) or
// the prompt (completions), so that a test can match answers to requests. It is padded
// with filler words to a length drawn between 16 and 64 tokens from the seed and the
// request body (so a retried request gets the same answer), and cut at the request's
// max_tokens, max_completion_tokens or max_output_tokens (finish_reason "length").
//
// Usage is counted with the model's tokenizer (package tokens) over the text the server
// receives, with OpenAI's documented chat formula: 3 tokens per message, plus the tokens
// of its role, content and name, 1 more per name, and 3 to prime the reply; tools and tool
// calls count as their JSON text; an image 765 tokens (85 at low detail). The count is the
// simulator's own, independent of tokens.Estimator, so that the estimator can be checked
// against it. completion_tokens is the tokens of the generated text.
//
// # Limits
//
// With Config.RPM or Config.TPM set, every request to a generation endpoint is admitted
// by token buckets holding a minute's worth of the limit and refilling continuously, as
// OpenAI enforces its limits: a request takes 1 from the RPM bucket and its prompt plus
// its max tokens (times n) from the TPM bucket. Answers carry x-ratelimit-limit-*,
// x-ratelimit-remaining-* and x-ratelimit-reset-* headers (unless NoLimitHeaders), the
// reset being the time until the bucket is full, in OpenAI's format ("6ms", "1.2s",
// "6m0s"). A request that does not fit is answered 429 with code rate_limit_exceeded, type
// "requests" or "tokens", and retry-after (seconds, rounded up) and retry-after-ms giving
// the time until it would fit (unless NoRetryAfter). A request larger than the TPM limit
// is answered 429 without them: it never fits.
//
// # Order of decisions
//
// A request to a generation endpoint is handled in this order:
//
//  1. counted in Stats.Requests and numbered n, in arrival order;
//  2. answered 401 without the configured API key;
//  3. fault injection: one uniform draw, a hash of the seed and n, falls in one of the
//     bands Reset, Hang, Error5xx, Truncate, Stall laid end to end (or past them: no fault). A
//     reset, hang or 5xx happens here, before the body is looked at;
//  4. the body is decoded and validated (400), the model checked (404);
//  5. a request drawn in the Random429 share (its own draw of n) is answered 429 with no
//     retry-after and no limit headers, as an overloaded relay does; otherwise the rate
//     limits admit the request or answer 429;
//  6. the answer is generated and, unless the latency is zero, the request waits TTFT +
//     PerToken × completion tokens, varied by Jitter (another draw of n), or until the
//     client gives up or the server is closed;
//  7. a request whose draw fell in the Truncate band gets its 200 body cut in half (a
//     stream loses its second half and [DONE]); one in the Stall band that streams gets
//     the first half of its stream and then nothing, the connection held open until the
//     client gives up (one that does not stream is answered as usual).
//
// Quirks are applied around these steps: RejectStreamOptions, ErrorIn200 (a draw of its
// own), StreamErrorAfterRole (a draw of its own; streamed chat requests only) and
// TransientNotFound answer before step 4, NoStreamUsage changes the decoded
// request, and Drop (a draw of its own) cuts a 200 answer off midway after step 6.
// CloseAfterAnswer (a draw of its own) closes a Listener's connection once an answer was
// written whole. Quirks.Refuse serves nothing at all.
//
// Because draws depend only on the seed and n, the same seed and the same sequence of
// requests give the same faults, whatever their concurrency.
package sim
