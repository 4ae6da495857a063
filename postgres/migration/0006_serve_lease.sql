-- Runner leases of sluice serve, as in the SQLite store (its migration 0010_serve_lease):
-- which server session runs each batch, until when, so that of several servers on one
-- store exactly one live one runs a batch. A server renews its leases well before they
-- expire and drops them when it closes; the batches of one that died are taken by another
-- once their lease has expired.
CREATE TABLE serve_lease (
    kind    text   NOT NULL, -- the object's kind: "batch"
    id      text   NOT NULL, -- the object's id
    holder  text   NOT NULL, -- the server session that holds it
    expires bigint NOT NULL, -- Unix nanoseconds
    PRIMARY KEY (kind, id)
);
