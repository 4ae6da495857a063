-- Answers a job paid again (as sqlite's 0007_repaid.sql). A request a run left in flight
-- without recording its outcome (it was killed, or its ledger failed) may have been
-- answered, and paid, already: Release marks it orphaned, and the claim that takes it
-- again counts it in job.repaid.

ALTER TABLE request ADD COLUMN orphaned boolean NOT NULL DEFAULT false;
ALTER TABLE job ADD COLUMN repaid bigint NOT NULL DEFAULT 0;
