// Package http is sluice serve: a self-hosted, OpenAI-compatible Batch API. Clients built
// on the official OpenAI SDKs point their base URL at it, upload a JSONL file through
// /v1/files, create a batch through /v1/batches, poll it and download its output and
// error files, while the server runs the batch on a sluice.Engine against whatever
// upstream the operator configured (a provider with no Batch API of its own, a vLLM or
// Ollama server, a gateway, or the built-in simulator).
//
// # Endpoints
//
//	POST   /v1/files                 upload (multipart, purpose=batch), streamed to disk
//	GET    /v1/files                 list (after, limit, order, purpose)
//	GET    /v1/files/{id}            retrieve
//	GET    /v1/files/{id}/content    download
//	DELETE /v1/files/{id}            delete
//	POST   /v1/batches               create (input_file_id, endpoint, completion_window, metadata)
//	GET    /v1/batches               list (after, limit, order)
//	GET    /v1/batches/{id}          retrieve, with live request_counts
//	POST   /v1/batches/{id}/cancel   cancel
//	GET    /v1/usage                 the calling key's usage and budget (sluice's own)
//	GET    /healthz                  liveness, no key needed
//
// Every JSON answer carries Content-Type: application/json, and every error is the
// OpenAI error body {"error":{"message","type","param","code"}}.
//
// # Keys
//
// Clients present "Authorization: Bearer KEY". The server knows only the SHA-256 of each
// key (Config.KeyHashes); a key sees only the files and batches it created, and the ids
// of others' objects answer 404 as if they did not exist.
//
// # Budgets
//
// A key in Config.Keys has a name and may have a Budget: a cap on cost (USD, priced by
// Config.Cost) and/or tokens per period, monthly from a reset day or daily, in UTC.
// Usage is recorded per batch, replaced (never incremented) from the batch's ledger
// every Config.UsageInterval while it runs and when its run ends, so a crash counts
// nothing twice and a restart loses nothing; a batch counts in the period it was
// created in, and per user too when its metadata has "user". A key whose budget for
// the period is spent gets 429 with the OpenAI body of code insufficient_quota on
// POST /v1/batches; a running batch whose key's budget runs out is drained and fails
// with an errors entry insufficient_quota, its finished requests in the output file
// and the rest in the error file with code insufficient_quota. The check runs every
// UsageInterval, so a key can overspend by what its batches send in one interval plus
// the requests in flight. GET /v1/usage answers the calling key's period, usage, limits,
// what remains and usage by user.
//
// Reservations survive a crash: a key's pool records a ceiling on what it spent plus
// what it reserved before it sends past the last one (ReservationStore). A server that
// starts first records the usage of the batches it resumes from their ledgers, then
// counts what the ceilings of a server that did not close cleanly exceed the ledgers by
// as unconfirmed spending, shown in GET /v1/usage and counted against the budget. Under
// a USD budget, a batch using a model with no price (Config.Priced) fails validation
// with model_not_priced. With Config.ContextLimit, a request without max_tokens reserves
// the context limit while it fits, then one at a time on the mean output.
//
// # Lifecycle
//
// A batch is validated (streaming through its input: JSONL syntax, custom_id present and
// unique, url equal to the batch's endpoint, the line and byte limits, a configured
// upstream for every model) and fails with errors.data naming the lines at fault, or goes
// in_progress as a sluice.Job with the batch's id on the engine of the upstream that
// serves its models. When the run ends it is finalizing while its output file (requests
// that succeeded) and error file (requests that failed) are written, then completed.
// Cancelling drains the run and keeps what finished; a batch still running when its
// completion_window passes is expired, its unfinished requests written to the error file
// with code batch_expired. A batch that fails because its upstream stopped it still has its
// finished requests in its output file. Deleting a batch's input while the batch is not
// final hides the file from the client but keeps its content until the batch ends. Batch state is kept in the same store as the ledger, so a
// server started again over the same store resumes the batches that were validating,
// in_progress, finalizing or cancelling, and the ledger never sends a finished request
// again.
//
// # Webhooks
//
// When a batch reaches a terminal status (completed, failed, expired, cancelled) the
// server POSTs the batch object as JSON to its webhook: the batch's metadata
// "webhook_url", or else Config.WebhookURL. A delivery runs on its own goroutine, never
// holding the batch back; connection errors, 408, 409, 429 and 5xx answers are retried
// with exponential backoff and jitter, up to Config.WebhookAttempts attempts. Close waits
// for deliveries still being tried until its context is done. Deliveries are not kept in
// the store: one pending when the server stops is lost.
//
// A batch's own webhook is used only while Config.BatchWebhooks is on. Redirects are never
// followed; link-local and fd00::/8 addresses (where clouds serve instance metadata) are
// refused at create and at each connection unless Config.WebhookAllow names them;
// webhook URLs are logged without user info or query.
package http
