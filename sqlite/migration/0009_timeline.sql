-- Timelines, for dashboards and reports: what a job's runs did in each interval of time
-- (sluice.TimelineBucket, kept as JSON: counts, errors by code, usage, cost, latency
-- histograms and a sample of the run's limiter and breaker), and their running totals, so
-- that following a job of any size reads a few small rows instead of scanning its ledger.
-- A job's rows go with the job.

CREATE TABLE timeline (
    job   INTEGER NOT NULL, -- job.seq
    start INTEGER NOT NULL, -- the bucket's start, Unix nanoseconds
    data  BLOB    NOT NULL, -- the bucket, JSON
    PRIMARY KEY (job, start)
) WITHOUT ROWID;

CREATE TABLE timeline_total (
    job  INTEGER PRIMARY KEY, -- job.seq
    data BLOB    NOT NULL     -- the sum of the job's buckets, with the latest sample, JSON
);

CREATE TRIGGER job_timeline_delete AFTER DELETE ON job BEGIN
    DELETE FROM timeline WHERE job = old.seq;
    DELETE FROM timeline_total WHERE job = old.seq;
END;

-- The failed requests of a job, in line order, without reading its done ones. Only a
-- request that fails touches it.
CREATE INDEX request_failed ON request (job, line) WHERE state = 3;
