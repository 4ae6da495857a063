-- As the SQLite store's migration 0012_usage_requests.
-- The online gateway's rows in serve_usage count requests, not a batch: requests is how
-- many online requests a row counts (0 for a batch's row, so batches are the rows with
-- none) and cache_hits how many of them were answered from the gateway's cache, at no
-- cost. Online rows written before this migration (their ids begin "online-") did not
-- record how many requests they counted: they are given one, so that they stop counting
-- as batches.
ALTER TABLE serve_usage ADD COLUMN requests bigint NOT NULL DEFAULT 0;
ALTER TABLE serve_usage ADD COLUMN cache_hits bigint NOT NULL DEFAULT 0;
UPDATE serve_usage SET requests = 1 WHERE batch_id LIKE 'online-%';
