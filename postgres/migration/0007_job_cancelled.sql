-- A job whose batches were cancelled (sluice batch cancel) has a state of its own,
-- sluice.JobCancelled, as in the SQLite store (its migration 0011_job_cancelled); it was
-- an interrupted job whose error began "cancelled". Such jobs of earlier versions move to
-- the new state, so that a watch still leaves them alone.
UPDATE job SET state = 'cancelled' WHERE state = 'interrupted' AND error LIKE 'cancelled%';
