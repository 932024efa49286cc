-- Object storage (Swift v1). Accounts exist implicitly; a row is made on the
-- first write. Times are microseconds since the Unix epoch.
CREATE TABLE swift_accounts (
    name    TEXT PRIMARY KEY,               -- AUTH_<project id>
    created INTEGER NOT NULL,
    meta    TEXT NOT NULL DEFAULT '{}'      -- kept headers (X-Account-Meta-*), JSON
);

CREATE TABLE swift_containers (
    id           INTEGER PRIMARY KEY,
    account      TEXT NOT NULL,
    name         TEXT NOT NULL,
    created      INTEGER NOT NULL,
    modified     INTEGER NOT NULL,          -- last PUT or POST of the container
    meta         TEXT NOT NULL DEFAULT '{}', -- X-Container-Meta-*, ACLs, JSON
    -- Counters kept in the transaction that changes swift_objects, and
    -- recomputed from the rows at start-up.
    object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account, name)
);

CREATE TABLE swift_objects (
    container_id INTEGER NOT NULL REFERENCES swift_containers (id),
    name         TEXT NOT NULL,             -- compared bytewise: UTF-8 order, as Swift lists
    file         TEXT NOT NULL,             -- the bytes: DataDir/objects/<file>
    size         INTEGER NOT NULL,          -- bytes as listed and served (an SLO's total)
    stored       INTEGER NOT NULL,          -- bytes of the file, counted in bytes used
    etag         TEXT NOT NULL,             -- MD5 of the file, hex
    content_type TEXT NOT NULL,
    modified     INTEGER NOT NULL,
    delete_at    INTEGER NOT NULL DEFAULT 0, -- Unix seconds; 0: never
    meta         TEXT NOT NULL DEFAULT '{}', -- kept headers (X-Object-Meta-*, ...), JSON
    PRIMARY KEY (container_id, name)
) WITHOUT ROWID;

CREATE INDEX swift_objects_expiry ON swift_objects (delete_at) WHERE delete_at > 0;
