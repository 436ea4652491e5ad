-- sessiond's PostgreSQL schema. Runs inside the configured schema
-- (search_path), so several deployments can share one database.
-- Times are Unix seconds. Session ids are SHA-256 hashes of tokens: no
-- token is ever stored.

CREATE TABLE sessions (
    id            BYTEA PRIMARY KEY,
    realm         TEXT NOT NULL,
    username      TEXT NOT NULL,
    -- The record's immutable part (identity, policy, created, …) as JSON.
    record        TEXT NOT NULL,
    generation    BIGINT NOT NULL,
    supersede     BOOLEAN NOT NULL,
    created       BIGINT NOT NULL,
    last_access   BIGINT NOT NULL,
    -- When the session ends if nothing else happens (absolute or idle end);
    -- NULL for never. The background sweep deletes by it.
    ends_at       BIGINT,
    data          TEXT NOT NULL DEFAULT '{}',
    data_version  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_user ON sessions (realm, username);
CREATE INDEX sessions_by_end ON sessions (ends_at) WHERE ends_at IS NOT NULL;

-- Per-(realm, user) supersede generation.
CREATE TABLE users (
    realm          TEXT NOT NULL,
    username       TEXT NOT NULL,
    generation     BIGINT NOT NULL,
    superseded_at  BIGINT,
    PRIMARY KEY (realm, username)
);

-- SessionKeyServer's /gen_key slots and groups.
CREATE TABLE keys (
    slot  TEXT PRIMARY KEY,
    key   TEXT NOT NULL
);
CREATE TABLE group_keys (
    grp  TEXT PRIMARY KEY,
    key  TEXT NOT NULL
);
CREATE TABLE group_roles (
    grp       TEXT NOT NULL,
    realm     TEXT NOT NULL,
    username  TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (grp, realm, username)
);
