-- Timelines, for dashboards and reports (as sqlite's 0009_timeline.sql): what a job's runs
-- did in each interval of time (sluice.TimelineBucket as JSON), and their running totals,
-- so that following a job of any size reads a few small rows instead of scanning its
-- ledger. A job's rows go with the job.

CREATE TABLE timeline (
    job   bigint NOT NULL REFERENCES job (seq) ON DELETE CASCADE,
    start bigint NOT NULL, -- the bucket's start, Unix nanoseconds
    data  bytea  NOT NULL, -- the bucket, JSON
    PRIMARY KEY (job, start)
);

CREATE TABLE timeline_total (
    job  bigint PRIMARY KEY REFERENCES job (seq) ON DELETE CASCADE,
    data bytea  NOT NULL -- the sum of the job's buckets, with the latest sample, JSON
);

-- The failed requests of a job, in line order, without reading its done ones.
CREATE INDEX request_failed ON request (job, line) WHERE state = 3;
