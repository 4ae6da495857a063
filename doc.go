// Package sluice runs large numbers of requests through OpenAI-compatible APIs: streamed
// from a Batch API JSONL file, under a concurrency cap and RPM/TPM limits learned from the
// provider's headers, with retries that honour Retry-After, a circuit breaker, and a
// durable ledger so that a crash never loses or re-pays a finished request.
//
// # Layout
//
// The root package holds the domain types (Request, Response, Job, Outcome), the
// interfaces the engine consumes (Store, Upstream, Estimator) and the Engine itself.
// Adapters live in their own packages and speak only these types:
//
//   - sqlite: the embedded Store (the default)
//   - postgres: the PostgreSQL Store, where many workers on many machines share a job
//     (WorkerRegistry, BudgetLedger; see Engine.Join and Engine.ShareBudget)
//   - openai: the HTTP Upstream for any OpenAI-compatible API
//   - sim: a built-in OpenAI-compatible simulator with latency, limits and faults
//   - tokens: the offline tokenizer behind the Estimator
//   - pricing: the price table, and the one price lookup (Table.Cost)
//   - estimate: counts and prices a file of requests before it runs, and holds it
//     against a Budget
//   - report: a job's report from its ledger, plain data for the text, JSON and HTML forms
//   - input: a JSONL input as the engine's Source, for programs outside this module
//   - storetest: the conformance suite every Store passes
//   - service: the batch service behind sluice serve (files, batches, their lifecycle,
//     per-key budgets, webhooks), callable from Go, with domain errors
//   - http: sluice serve's HTTP adapter, the OpenAI Files and Batches API over service
//   - pipeline: several prompts over every document of a file, into one table
//   - batch: a job run through a provider's Batch API (parts, rounds, watching to the
//     end, hybrid runs and the rate they plan with, the requests still missing)
//   - worker: the loop of sluice worker, joining the running jobs of a shared store
//   - gateway: sluice serve's online gateway (proxy, routing, failover, keys' budgets)
//   - ui: the dashboard; timeline: what runs did over time, for it; metrics: Prometheus
//   - internal/bench: the scenarios of sluice bench; internal/testutil: helpers the
//     tests of several packages share; internal/mock: fakes of the interfaces
//   - cmd/sluice: the command line, the only place that reads flags and environment and
//     wires adapters together; it parses, wires and prints, and holds no domain logic
//
// # The flow of one request
//
// A line of the input file is parsed (internal/jsonl), its tokens estimated, and added to
// the job's ledger in the Store in batches. The Engine claims pending requests under a
// lease, waits for a concurrency slot, the circuit breaker and the RPM and TPM limiters
// (which learn the upstream's limits from its x-ratelimit headers), and sends the request
// through the Upstream. A retryable failure waits out its backoff (or the upstream's
// Retry-After) and goes round again; a final answer is written back to the ledger by one
// batching writer, which commits by size and time; a request keeps its concurrency slot
// until its outcome is committed, so a crash re-sends at most the concurrency. When every
// request is final, the output file is written from the
// ledger in input order.
//
// # Budgets
//
// Config.Budget caps what a job spends over all its runs, and a BudgetPool (passed to
// Start with WithBudgetPool) caps what several jobs spend together. Either way each
// request reserves its worst case before it is sent and the answer's usage settles it,
// so spending never passes the cap.
//
// # Through a provider's Batch API
//
// Package batch runs a job's requests as provider batches instead: Parts, each a batch
// of one endpoint and one model, whose requests are in flight in the ledger under the
// part's owner until its results (BatchResult) are collected. The Batch API's objects
// (File, Batch, BatchStatus) are defined here, shared by the provider client (openai) and
// sluice serve (http). An online run of the same job, started with StopWhenIdle, sends
// only what no part holds: that is how a hybrid run finishes online before a deadline.
package sluice
