-- Budgets of sluice serve that survive a crash. While a server runs, each key's pool for a
-- budget period records here, ahead of spending, a ceiling on what it has spent plus what
-- its requests in flight have reserved (serve_reservation, one row per server session,
-- key and period). A server that starts finds the rows of sessions that did not end
-- cleanly and turns what their ceiling exceeds the ledgers by into unconfirmed spending
-- (serve_unconfirmed): answers the upstream may have billed that no ledger holds. It
-- counts against the key's budget for that period from then on.

CREATE TABLE serve_reservation (
    session       TEXT    NOT NULL,             -- the server run that reserved
    owner         TEXT    NOT NULL,             -- the hash of the client key
    period_start  INTEGER NOT NULL,             -- the budget period, Unix seconds
    prior_tokens  INTEGER NOT NULL DEFAULT 0,   -- unconfirmed spending the pool started with
    prior_cost    REAL    NOT NULL DEFAULT 0,
    tokens        INTEGER NOT NULL DEFAULT 0,   -- the ceiling: spent plus reserved, absolute
    cost          REAL    NOT NULL DEFAULT 0,   -- USD
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (session, owner, period_start)
);

CREATE TABLE serve_unconfirmed (
    id            INTEGER PRIMARY KEY,
    owner         TEXT    NOT NULL,
    period_start  INTEGER NOT NULL,
    tokens        INTEGER NOT NULL DEFAULT 0,
    cost          REAL    NOT NULL DEFAULT 0,
    session       TEXT    NOT NULL,             -- the session it was reserved by
    created_at    INTEGER NOT NULL
);

CREATE INDEX serve_unconfirmed_owner ON serve_unconfirmed (owner, period_start);
