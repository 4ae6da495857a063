// Package service is the batch service behind sluice serve, callable from Go: files,
// batches and their lifecycle on a sluice.Engine, per-key budgets and usage, and
// webhooks. Adapters (http/ for the OpenAI Files and Batches APIs, a dashboard, a
// gateway, the bench) call its methods; none of them adds a business rule.
//
//	svc, err := service.New(ctx, service.Config{Store: st, FilesDir: dir,
//		Routes: []service.Route{{Name: "default", Engine: eng}}, KeyHashes: hashes})
//	f, err := svc.CreateFile(ctx, tenant, "batch", "input.jsonl", r)
//	b, err := svc.CreateBatch(ctx, tenant, service.CreateBatchParams{InputFileID: f.ID,
//		Endpoint: "/v1/chat/completions", CompletionWindow: "24h"})
//	b, err = svc.Batch(ctx, tenant, b.ID) // poll; live request counts
//	err = svc.Close(ctx)                  // drains; another service, or the next New, resumes its batches
//
// # Tenants and errors
//
// A tenant is the hex SHA-256 of a client key (HashKey; Authenticate maps a key to its
// tenant). Every method that serves a client takes its tenant and sees only the
// tenant's objects: the ids of others' answer ENOTFOUND as if they did not exist.
//
// A method fails with an *Error carrying a code (EINVALID, ENOTFOUND, ECONFLICT,
// ETOOLARGE, EQUOTA, ERATELIMIT, EUNAVAILABLE, EUNAUTHORIZED), a message for the client,
// the parameter at fault and the OpenAI error code ("batch_not_cancellable",
// "insufficient_quota"). Any other error is internal: its text is for the operator's
// log. The service never speaks of status codes; http/ maps the codes to them in one
// table.
//
// # Concurrency
//
// Each batch is run by one goroutine, and one more keeps the runner leases (see
// Replicas); Close joins them all. A batch's record is changed under a lock of its own,
// so a cancel never loses an update of the batch's goroutine and two batches never wait
// for each other; a file's deletion is serialised, under the file's own lock, with the
// start and the end of the batches that read it.
//
// # Budgets
//
// A key in Config.Keys has a name and may have a KeyBudget: a cap on cost (USD, priced by
// Config.Cost) and/or tokens per period, monthly from a reset day or daily, in UTC.
// Usage is recorded per batch, replaced (never incremented) from the batch's ledger
// every Config.UsageInterval while it runs and when its run ends, so a crash counts
// nothing twice and a restart loses nothing; a batch counts in the period it was
// created in, and per user too when its metadata has "user". A key whose budget for
// the period is spent gets EQUOTA (insufficient_quota) from CreateBatch; a running batch
// whose key's budget runs out is drained and fails with an errors entry
// insufficient_quota, its finished requests in the output file and the rest in the error
// file with code insufficient_quota. The check runs every UsageInterval, so a key can
// overspend by what its batches send in one interval plus the requests in flight. Usage
// answers the key's period, usage, limits, what remains and usage by user; BudgetPool
// gives other traffic of the key (the gateway's) the pool its batches spend from.
//
// Reservations survive a crash: a key's pool records a ceiling on what it spent plus
// what it reserved before it sends past the last one (ReservationStore). When a server
// starts, and on each tick of its keeper (see Replicas), it finds the ceilings of server
// sessions that ended without dropping them (a session holds a lease of its own while
// it lives), records the usage of the unfinished batches from their ledgers, and counts
// what those ceilings exceed the ledgers by as unconfirmed spending, shown by Usage and
// counted against the budget. A live replica's ceilings are left alone. Under a USD
// budget, a batch using a model with no price (Config.Priced) fails validation with
// model_not_priced. With Config.ContextLimit, a request without max_tokens reserves
// the context limit while it fits, then one at a time on the mean output.
//
// # Lifecycle
//
// A batch is validated (streaming through its input: JSONL syntax, custom_id present and
// unique, url equal to the batch's endpoint, the line and byte limits, a Route for every
// model) and fails with errors.data naming the lines at fault, or goes in_progress as a
// sluice.Job with the batch's id on the engine of the route that serves its models; the
// runs of an engine share its concurrency fairly between tenants first, then between a
// tenant's batches. When the run ends it is finalizing while its output file (requests
// that succeeded) and error file (requests that failed) are written, then completed.
// Cancelling drains the run and keeps what finished; a batch still running when its
// completion_window passes is expired, its unfinished requests written to the error file
// with code batch_expired. A batch that fails because its upstream stopped it still has its
// finished requests in its output file. Deleting a batch's input while the batch is not
// final hides the file from the client but keeps its content until the batch ends.
// Batch state is kept in the same store as the ledger, so a service started again over
// the same store resumes the batches that were validating, in_progress, finalizing or
// cancelling, and the ledger never sends a finished request again.
//
// # Replicas
//
// Several services (sluice serve processes on several machines) may share one store and
// one FilesDir; any of them answers any request. Each batch is run by exactly one live
// service, the one whose session holds the batch's runner lease in the store
// (LeaseStore). A service takes the lease of each batch it creates, and a goroutine of
// its own renews its leases every Config.LeaseTTL/3 (DefaultLeaseTTL, 15 s) and, on the
// same tick, adopts the batches whose lease no one holds or has expired. So a service
// started while another runs a batch leaves it alone; one that closes releases its
// leases and another takes its batches on its next tick; the batches of one that died
// (its lease no longer renewed) are taken within about 4/3 LeaseTTL, and what it had in
// flight goes back to pending: at most its concurrency is sent again. A service paused
// past its lease finds it taken at its next renewal and stops its run there. A cancel may
// reach any service: it stores the batch as cancelling, and the service running the batch
// reads that on its next tick and drains the run; the batch ends cancelled with what
// finished. A batch's record is saved only while its status is still the one read
// (ObjectStore.SwapObject), so a cancel stored by one service is never undone by another
// moving the batch on. The service running a batch answers its live request counts and
// stores them every UsageInterval, where the others read them. Leases compare the
// services' clocks: keep them in step to well within a lease.
//
// # Webhooks
//
// When a batch reaches a terminal status (completed, failed, expired, cancelled) the
// server POSTs the batch object as JSON to its webhook: the batch's metadata
// "webhook_url", or else Config.WebhookURL. A delivery runs on its own goroutine, never
// holding the batch back; connection errors, 408, 409, 429 and 5xx answers are retried
// as the engine retries (sluice.UpstreamError.Retryable, sluice.Backoff), up to
// Config.WebhookAttempts attempts. Close waits for deliveries still being tried until its
// context is done. Deliveries are not kept in the store: one pending when the service
// stops is lost.
//
// A batch's own webhook is used only while Config.BatchWebhooks is on. Redirects are never
// followed; link-local and fd00::/8 addresses (where clouds serve instance metadata) are
// refused at create and at each connection unless Config.WebhookAllow names them;
// webhook URLs are logged without user info or query.
package service
