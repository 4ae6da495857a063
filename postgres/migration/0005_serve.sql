-- The state of sluice serve beside the ledger, as in the SQLite store (its migrations
-- 0002_serve, 0004_usage and 0008_serve_reservation), so that several serve processes
-- can share one database.

-- The objects of sluice serve: uploaded files and batches, kept as JSON documents owned by
-- one client key (by its hash). seq orders them by creation for cursor pagination: new
-- objects of one (kind, owner) are inserted under a transaction-scoped advisory lock, so
-- that they commit in seq order and a page never skips one that commits late. status lets
-- a server find the batches to resume after a restart.
CREATE TABLE serve_object (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind   text   NOT NULL,  -- "file" or "batch"
    id     text   NOT NULL,
    owner  text   NOT NULL,
    status text   NOT NULL DEFAULT '',
    doc    bytea  NOT NULL,
    UNIQUE (kind, id)
);

CREATE INDEX serve_object_owner ON serve_object (kind, owner, seq);
CREATE INDEX serve_object_status ON serve_object (kind, status);

-- What each batch of sluice serve has used, for the per-key budgets: one row per batch,
-- replaced (never incremented) from the batch's ledger, so that a crash between two
-- updates cannot count anything twice. A batch counts in the period it was created in.
CREATE TABLE serve_usage (
    batch_id          text             PRIMARY KEY,
    owner             text             NOT NULL,             -- the hash of the client key
    key_name          text             NOT NULL DEFAULT '',  -- the key's name in the server's config
    user_id           text             NOT NULL DEFAULT '',  -- the batch's metadata "user"
    created_at        bigint           NOT NULL,             -- the batch's creation, Unix seconds
    prompt_tokens     bigint           NOT NULL DEFAULT 0,
    completion_tokens bigint           NOT NULL DEFAULT 0,
    cost              double precision NOT NULL DEFAULT 0,   -- USD
    updated_at        bigint           NOT NULL              -- Unix seconds
);

CREATE INDEX serve_usage_owner ON serve_usage (owner, created_at);
CREATE INDEX serve_usage_created ON serve_usage (created_at);

-- Budgets of sluice serve that survive a crash: each server session's ceiling, per key and
-- budget period, on what it has spent plus reserved (serve_reservation), and what the
-- ceilings of sessions that did not end cleanly exceeded the ledgers by
-- (serve_unconfirmed), which counts against the key's budget from then on.
CREATE TABLE serve_reservation (
    session      text             NOT NULL,             -- the server run that reserved
    owner        text             NOT NULL,             -- the hash of the client key
    period_start bigint           NOT NULL,             -- the budget period, Unix seconds
    prior_tokens bigint           NOT NULL DEFAULT 0,   -- unconfirmed spending the pool started with
    prior_cost   double precision NOT NULL DEFAULT 0,
    tokens       bigint           NOT NULL DEFAULT 0,   -- the ceiling: spent plus reserved, absolute
    cost         double precision NOT NULL DEFAULT 0,   -- USD
    updated_at   bigint           NOT NULL,
    PRIMARY KEY (session, owner, period_start)
);

CREATE TABLE serve_unconfirmed (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner        text             NOT NULL,
    period_start bigint           NOT NULL,
    tokens       bigint           NOT NULL DEFAULT 0,
    cost         double precision NOT NULL DEFAULT 0,
    session      text             NOT NULL,             -- the session it was reserved by
    created_at   bigint           NOT NULL
);

CREATE INDEX serve_unconfirmed_owner ON serve_unconfirmed (owner, period_start);
