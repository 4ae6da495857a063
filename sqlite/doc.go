// Package sqlite is the embedded sluice.Store: a ledger of jobs and their requests in one
// SQLite database file, through the pure-Go driver modernc.org/sqlite, so sluice builds
// without cgo.
//
// # Durability
//
// The database runs in WAL mode with synchronous=NORMAL: a committed transaction survives
// the process being killed at any moment, and a power cut loses at most the last
// transactions before it, never the file. Reopening after a crash needs no repair. Every
// call that changes the ledger is one transaction, so a batch of lines added or of
// outcomes recorded is all there or not at all.
//
// # Concurrency
//
// A Store writes through a single connection, so that its own writes queue instead of
// failing with SQLITE_BUSY, and reads (Job, Jobs, Results, Stats) through a small pool
// beside it, which WAL lets run while a write is in progress. Write transactions take the
// database's write lock when they begin and wait up to BusyTimeout for another process
// holding it, so several processes can share one file, each running its own job or
// sharing one under leases.
//
// # Schema
//
// The schema is created and upgraded by the numbered SQL files in migration/, embedded
// in the binary and applied in order, in one transaction, when the file is opened; the
// table schema_version records those applied, and a file written by a newer sluice is
// refused rather than misread.
//
// A request is a row of request (state, lease, counters, usage and estimate: small, so
// that claims, completions and the aggregates of Stats stay cheap), one of request_input
// (method, url, body) and, once it has an answer, one of request_output (request id, body,
// error message). Its id packs its job and line, id = job<<32 | line (hence MaxLine), so
// that an outcome finds its row by rowid alone and a job's requests are one range of
// rowids in line order, which Results and Stats read without an index. Partial indexes
// serve the other access paths: pending lines in line order, leases by expiry, and
// custom_ids by job, unique, for the duplicate check.
//
// The parts of jobs run through a provider's Batch API (package batch) are rows of part.
// The requests a part holds are in flight under its owner ("part-N") with a lease that
// never expires (lease_until = MaxInt64), which the engine's claims of expired leases
// therefore never take, and which the partial index request_part finds in line order;
// engine claims and completions never write to that index.
//
// # Cost
//
// Adding a line costs an insert into request, its custom_id index and the pending index,
// and one into request_input. A claim of n requests is an index range read of the
// pending lines, one of the expired leases and one update by rowid; an outcome is one
// update by rowid and one insert.
//
// Beside the rows, every transaction costs pages: each page it changes is a frame
// appended to the WAL (two writes) and later copied into the file by a checkpoint, and
// these writes are the largest part of the ledger's CPU (a third of that of
// BenchmarkLedgerWire). A completion writes its answers' pages and, whatever the number
// of outcomes it holds, about five more: the database header (the file grew), the
// answers' interior pages, the leaf of the leases index and the request rows' leaves; a
// claim writes the leaves it changes of request and of the pending and leases indexes.
// BenchmarkWALFrames counts them: with answers of 900 bytes, claims and completions of
// 16 requests write 0.85 frames a request, of 64 requests 0.43, so fewer, larger
// transactions cut the ledger's cost per request most.
//
// Complete writes each kind of outcome by UPDATE ... FROM (VALUES ...), which SQLite runs
// through temporary tables; its alternatives cost as much or more in BenchmarkLedgerWire
// (6 to 10 pairs each): one prepared single-row update per outcome about 6% more, an
// INSERT ... SELECT ... ON CONFLICT DO UPDATE over the same rows no less (3% more, within
// the noise), and the rows as one JSON argument read by json_each a sixth more. Two costs are the driver's and stay:
// modernc.org/sqlite opens every connection SQLITE_OPEN_FULLMUTEX (no DSN parameter or
// hook changes that, and the open flag overrides sqlite3_config's threading mode), and
// its transactions begin and commit by SQL text that SQLite parses each time (database/sql
// asks the driver for a transaction, and the driver runs "begin immediate" and "commit"
// through sqlite3_exec; prepared BEGIN and COMMIT would mean managing transactions
// outside database/sql).
//
// Results reads pages of 512 rows by rowid range, so a job of any size streams in
// bounded memory. Stats scans the job's request rows a few times and has SQLite sort its
// done latencies for the percentiles: its cost grows with the job (about a tenth of a
// second per 100,000 requests), so call it for summaries, not for live progress. The
// benchmarks in store_bench_test.go measure each path:
//
//	go test -run '^$' -bench . -benchtime 3x ./sqlite/
package sqlite
