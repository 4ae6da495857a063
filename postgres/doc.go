// Package postgres is a sluice.Store kept in PostgreSQL, for ledgers that many workers, on
// many machines, share. It holds the same ledger as package sqlite (jobs, requests, the
// parts of Batch API jobs, upstream rates, the pipelines' answer cache) and passes the
// same conformance suite, storetest.
//
// # Opening
//
// Open takes a postgres:// URL (or any connection string pgx accepts) and applies the
// embedded migrations (migration/*.sql) in one transaction under an advisory lock, so
// that workers started together apply each migration once. A "schema" parameter in the
// URL keeps the store's tables in that schema, created when missing:
//
//	st, err := postgres.Open(ctx, "postgres://sluice@db/sluice?schema=team_a")
//
// # Claims and leases
//
// A request row is small (its input and its last answer live in request_input and
// request_output), so that claims and completions rewrite little. Claim is one statement:
// it locks the first pending lines and the oldest expired leases with FOR UPDATE SKIP
// LOCKED, so that concurrent claims pass each other's rows by instead of waiting, and
// puts the first n of them in flight under the owner until now+lease. A worker that dies
// stops renewing; once its leases expire, its requests are claimed again by others, and
// its late answers are ignored. Complete records a batch of outcomes in one statement
// over unnest arrays; AddRequests copies new lines with COPY, looking the ledger up only
// when a line is already present (a resumed ingest).
//
// # Not yet
//
// The commands do not use this store yet, and time is not yet passed into Claim and
// Renew (they read the clock): lease tests wait for expiry.
package postgres
