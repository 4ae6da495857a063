-- The objects of sluice serve: uploaded files and batches, kept as JSON documents owned by
-- one client key (by its hash). seq orders them by creation for cursor pagination; status
-- lets the server find the batches to resume after a restart.

CREATE TABLE serve_object (
    seq     INTEGER PRIMARY KEY,
    kind    TEXT    NOT NULL,  -- "file" or "batch"
    id      TEXT    NOT NULL,
    owner   TEXT    NOT NULL,
    status  TEXT    NOT NULL DEFAULT '',
    doc     BLOB    NOT NULL,
    UNIQUE (kind, id)
);

CREATE INDEX serve_object_owner ON serve_object (kind, owner, seq);
CREATE INDEX serve_object_status ON serve_object (kind, status);
