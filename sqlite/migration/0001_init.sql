-- The ledger: jobs, and one row per input line of each job.
--
-- A request's small, often-read columns live in request; its input (method, url, body)
-- and its last answer (request id, body, error message) live in request_input and
-- request_output under the same id, so that claims, completions and the aggregates of
-- Stats touch small rows only; the store writes all three in the transaction that makes
-- the request. Times are Unix nanoseconds, durations nanoseconds.

CREATE TABLE job (
    seq         INTEGER PRIMARY KEY,       -- the key request rows use
    id          TEXT    NOT NULL UNIQUE,
    state       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    input       TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    options     BLOB,
    ingested    INTEGER NOT NULL DEFAULT 0,
    ingest_done INTEGER NOT NULL DEFAULT 0,
    elapsed     INTEGER NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX job_fingerprint ON job (fingerprint, created_at);

-- A request's id packs its job and line, id = job << 32 | line, so that a request is found
-- by its rowid alone and a job's requests are one range of rowids, in line order.
CREATE TABLE request (
    id                INTEGER PRIMARY KEY,
    job               INTEGER GENERATED ALWAYS AS (id >> 32) VIRTUAL,
    line              INTEGER GENERATED ALWAYS AS (id & 4294967295) VIRTUAL,
    -- state: 0 pending, 1 in flight, 2 done, 3 failed.
    state             INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    throttled         INTEGER NOT NULL DEFAULT 0,
    lease_until       INTEGER,
    owner             TEXT,
    status_code       INTEGER NOT NULL DEFAULT 0,
    error_code        TEXT    NOT NULL DEFAULT '',
    usage_prompt      INTEGER NOT NULL DEFAULT 0,
    usage_completion  INTEGER NOT NULL DEFAULT 0,
    usage_cached      INTEGER NOT NULL DEFAULT 0,
    latency           INTEGER NOT NULL DEFAULT 0,
    finished_at       INTEGER,
    -- The estimate made at ingest.
    model             TEXT    NOT NULL DEFAULT '',
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    max_output_tokens INTEGER NOT NULL DEFAULT 0,
    custom_id         TEXT    NOT NULL,
    -- holds_id is 1 for a valid line that holds its custom_id within the job; 0 for
    -- an invalid line or a duplicate.
    holds_id          INTEGER NOT NULL
);

CREATE UNIQUE INDEX request_custom_id ON request (job, custom_id) WHERE holds_id = 1;
-- Claims take pending lines in line order, and leases that expired.
CREATE INDEX request_pending ON request (job, line) WHERE state = 0;
CREATE INDEX request_leased ON request (job, lease_until) WHERE state = 1;
-- No index on latency: it would cost every completion an insert at a random place, while
-- the percentiles of Stats need one sort per call.

CREATE TABLE request_input (
    id     INTEGER PRIMARY KEY, -- the request's id
    method TEXT    NOT NULL,
    url    TEXT    NOT NULL,
    body   BLOB
);

CREATE TABLE request_output (
    id            INTEGER PRIMARY KEY, -- the request's id
    request_id    TEXT    NOT NULL DEFAULT '',
    body          BLOB,
    error_message TEXT    NOT NULL DEFAULT ''
);
