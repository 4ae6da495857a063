-- Answers a job paid again. A request a run left in flight without recording its outcome
-- (the run was killed, or its ledger failed) may have been answered, and paid, already:
-- Release marks it orphaned, and the claim that takes it again counts it in job.repaid.
-- Sluice holds a request's concurrency slot until its outcome is in the ledger, so one
-- crash orphans at most the concurrency.

ALTER TABLE request ADD COLUMN orphaned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE job ADD COLUMN repaid INTEGER NOT NULL DEFAULT 0;
