-- The answer cache of pipelines: upstream answer bodies by the content address of their
-- request (SHA-256 of the upstream's base URL, the endpoint and the body, in hex), so that
-- a request sent before is answered without being sent again.

CREATE TABLE cache (
    key        TEXT    PRIMARY KEY,
    body       BLOB    NOT NULL,
    created_at INTEGER NOT NULL  -- Unix nanoseconds
);
