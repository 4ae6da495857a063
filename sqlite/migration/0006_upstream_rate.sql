-- What runs learned of each upstream's speed, by base URL: the rate limits its headers
-- gave and the median latency of its requests. A hybrid run reads it to estimate how long
-- running the rest of a job online would take. One row per upstream, replaced by each run.

CREATE TABLE upstream_rate (
    base_url   TEXT    PRIMARY KEY,
    rpm        REAL    NOT NULL DEFAULT 0,
    tpm        REAL    NOT NULL DEFAULT 0,
    latency    INTEGER NOT NULL DEFAULT 0, -- nanoseconds
    updated_at INTEGER NOT NULL            -- Unix nanoseconds
);
