-- What each batch of sluice serve has used, for the per-key budgets: one row per batch,
-- replaced (never incremented) from the batch's ledger, so that a crash between two
-- updates cannot count anything twice. A batch counts in the period it was created in.

CREATE TABLE serve_usage (
    batch_id          TEXT    PRIMARY KEY,
    owner             TEXT    NOT NULL,             -- the hash of the client key
    key_name          TEXT    NOT NULL DEFAULT '',  -- the key's name in the server's config
    user_id           TEXT    NOT NULL DEFAULT '',  -- the batch's metadata "user"
    created_at        INTEGER NOT NULL,             -- the batch's creation, Unix seconds
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost              REAL    NOT NULL DEFAULT 0,   -- USD
    updated_at        INTEGER NOT NULL              -- Unix seconds
);

CREATE INDEX serve_usage_owner ON serve_usage (owner, created_at);
CREATE INDEX serve_usage_created ON serve_usage (created_at);
