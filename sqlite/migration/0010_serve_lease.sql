-- Runner leases of sluice serve: which server session runs each batch, until when, so
-- that of several servers on one store exactly one live one runs a batch. A server renews
-- its leases well before they expire and drops them when it closes; the batches of one
-- that died are taken by another once their lease has expired.

CREATE TABLE serve_lease (
    kind    TEXT    NOT NULL, -- the object's kind: "batch"
    id      TEXT    NOT NULL, -- the object's id
    holder  TEXT    NOT NULL, -- the server session that holds it
    expires INTEGER NOT NULL, -- Unix nanoseconds
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
