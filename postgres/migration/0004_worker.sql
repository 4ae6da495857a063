-- The workers of jobs (sluice run and sluice worker on any number of machines): each
-- records a heartbeat, so that the live ones split the job's rate limits between them and
-- a dead one's leases can be taken back at once. A worker is live until expires_at (Unix
-- nanoseconds), which each heartbeat moves on.
CREATE TABLE worker (
    job        bigint NOT NULL,
    owner      text   NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (job, owner)
);

-- The rate limits a job's workers learned from the upstream's headers (requests and
-- tokens per minute, 0: none learned), so that a worker that joins starts from them.
ALTER TABLE job ADD COLUMN learned_rpm double precision NOT NULL DEFAULT 0;
ALTER TABLE job ADD COLUMN learned_tpm double precision NOT NULL DEFAULT 0;

-- What the job's workers together have committed of its budget (--max-cost, --max-tokens):
-- the ceilings each reserved ahead of its spending, less what a worker gave back when it
-- left. NULL until a worker first reserves, which starts it from the ledger's spending.
ALTER TABLE job ADD COLUMN budget_cost double precision;
ALTER TABLE job ADD COLUMN budget_tokens bigint;
