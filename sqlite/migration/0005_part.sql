-- The parts of jobs run through a provider's Batch API (sluice batch): one row per
-- provider batch, keyed by its job and its number among the job's parts, with what the
-- provider said of it. usage_* sum the usage of the requests the part completed; only
-- the transaction that records them adds to it. Times are Unix nanoseconds.
--
-- A part's requests are in flight in request under the owner "part-<number>" with a lease
-- that never expires (lease_until = 9223372036854775807, the largest integer), so that the
-- engine never claims them, until the part's results are collected. request_part finds a
-- part's requests in line order; being partial on that lease, it holds part lines only and
-- costs the engine's claims and completions nothing.

CREATE TABLE part (
    job              INTEGER NOT NULL,  -- job.seq
    number           INTEGER NOT NULL,  -- from 1 within the job
    round            INTEGER NOT NULL,
    endpoint         TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    requests         INTEGER NOT NULL,
    bytes            INTEGER NOT NULL,
    file_id          TEXT    NOT NULL DEFAULT '',
    batch_id         TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL DEFAULT '',
    count_total      INTEGER NOT NULL DEFAULT 0,
    count_completed  INTEGER NOT NULL DEFAULT 0,
    count_failed     INTEGER NOT NULL DEFAULT 0,
    output_file_id   TEXT    NOT NULL DEFAULT '',
    error_file_id    TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT '',
    collected        INTEGER NOT NULL DEFAULT 0,
    usage_prompt     INTEGER NOT NULL DEFAULT 0,
    usage_completion INTEGER NOT NULL DEFAULT 0,
    usage_cached     INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (job, number)
);

CREATE INDEX request_part ON request (job, owner, line)
    WHERE state = 1 AND lease_until = 9223372036854775807;
