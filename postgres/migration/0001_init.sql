-- The ledger: jobs, and one row per input line of each job, as in the SQLite store.
--
-- A request's small, often-written columns live in request; its input (method, url, body)
-- and its last answer (request id, body, error message) live in request_input and
-- request_output under the same key, so that claims, completions and the aggregates of
-- Stats rewrite and scan small rows only. Times are Unix nanoseconds and durations
-- nanoseconds, as in the SQLite store, so that both keep Go's precision.

CREATE TABLE job (
    seq         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- the key request rows use
    id          text    NOT NULL UNIQUE,
    state       text    NOT NULL,
    created_at  bigint  NOT NULL,
    updated_at  bigint  NOT NULL,
    input       text    NOT NULL,
    fingerprint text    NOT NULL,
    options     bytea,
    ingested    bigint  NOT NULL DEFAULT 0,
    ingest_done boolean NOT NULL DEFAULT false,
    elapsed     bigint  NOT NULL DEFAULT 0,
    error       text    NOT NULL DEFAULT ''
);

CREATE INDEX job_fingerprint ON job (fingerprint, created_at);

CREATE TABLE request (
    job               bigint   NOT NULL,
    line              bigint   NOT NULL,
    -- state: 0 pending, 1 in flight, 2 done, 3 failed.
    state             smallint NOT NULL,
    attempts          bigint   NOT NULL DEFAULT 0,
    throttled         bigint   NOT NULL DEFAULT 0,
    lease_until       bigint,
    owner             text,
    status_code       bigint   NOT NULL DEFAULT 0,
    error_code        text     NOT NULL DEFAULT '',
    usage_prompt      bigint   NOT NULL DEFAULT 0,
    usage_completion  bigint   NOT NULL DEFAULT 0,
    usage_cached      bigint   NOT NULL DEFAULT 0,
    latency           bigint   NOT NULL DEFAULT 0,
    finished_at       bigint,
    -- The estimate made at ingest.
    model             text     NOT NULL DEFAULT '',
    prompt_tokens     bigint   NOT NULL DEFAULT 0,
    max_output_tokens bigint   NOT NULL DEFAULT 0,
    custom_id         text     NOT NULL,
    PRIMARY KEY (job, line)
);

-- The line holding each custom_id of a job: the valid lines, not the invalid ones or the
-- duplicates. It is kept apart from request, so that the claims' and completions' new
-- versions of request rows have one index fewer to enter.
CREATE TABLE request_custom_id (
    job       bigint NOT NULL,
    custom_id text   NOT NULL,
    line      bigint NOT NULL,
    PRIMARY KEY (job, custom_id)
);
-- Claims take pending lines in line order, and leases that expired.
CREATE INDEX request_pending ON request (job, line) WHERE state = 0;
CREATE INDEX request_leased ON request (job, lease_until) WHERE state = 1;
-- A part's requests (sluice batch) are in flight under the part's owner with a lease that
-- never expires (the largest bigint): this finds them in line order.
CREATE INDEX request_part ON request (job, owner, line)
    WHERE state = 1 AND lease_until = 9223372036854775807;

-- Every claim and every answer writes a new version of a request row, and the indexes
-- keep the old versions' entries until a vacuum: claims walk them (cheaply, once marked
-- dead, but page by page). Vacuum and analyze the table after 1% of it changed rather
-- than PostgreSQL's default 20% and 10%, so that a job of millions of lines keeps its
-- indexes lean and its statistics current while it runs.
ALTER TABLE request SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.01);

CREATE TABLE request_input (
    job    bigint NOT NULL,
    line   bigint NOT NULL,
    method text   NOT NULL,
    url    text   NOT NULL,
    body   bytea,
    PRIMARY KEY (job, line)
);

CREATE TABLE request_output (
    job           bigint NOT NULL,
    line          bigint NOT NULL,
    request_id    text   NOT NULL DEFAULT '',
    body          bytea,
    error_message text   NOT NULL DEFAULT '',
    PRIMARY KEY (job, line)
);

-- The parts of jobs run through a provider's Batch API (sluice batch), as in the SQLite
-- store: one row per provider batch, keyed by its job and its number among the job's parts.
CREATE TABLE part (
    job              bigint  NOT NULL,
    number           bigint  NOT NULL,
    round            bigint  NOT NULL,
    endpoint         text    NOT NULL,
    model            text    NOT NULL,
    requests         bigint  NOT NULL,
    bytes            bigint  NOT NULL,
    file_id          text    NOT NULL DEFAULT '',
    batch_id         text    NOT NULL DEFAULT '',
    status           text    NOT NULL DEFAULT '',
    count_total      bigint  NOT NULL DEFAULT 0,
    count_completed  bigint  NOT NULL DEFAULT 0,
    count_failed     bigint  NOT NULL DEFAULT 0,
    output_file_id   text    NOT NULL DEFAULT '',
    error_file_id    text    NOT NULL DEFAULT '',
    error            text    NOT NULL DEFAULT '',
    collected        boolean NOT NULL DEFAULT false,
    usage_prompt     bigint  NOT NULL DEFAULT 0,
    usage_completion bigint  NOT NULL DEFAULT 0,
    usage_cached     bigint  NOT NULL DEFAULT 0,
    created_at       bigint  NOT NULL,
    updated_at       bigint  NOT NULL,
    PRIMARY KEY (job, number)
);

-- The answer cache of pipelines: answer bodies by the content address of their request.
CREATE TABLE cache (
    key        text   PRIMARY KEY,
    body       bytea  NOT NULL,
    created_at bigint NOT NULL
);

-- What runs learned of each upstream's speed, by base URL.
CREATE TABLE upstream_rate (
    base_url   text             PRIMARY KEY,
    rpm        double precision NOT NULL DEFAULT 0,
    tpm        double precision NOT NULL DEFAULT 0,
    latency    bigint           NOT NULL DEFAULT 0,
    updated_at bigint           NOT NULL
);
