-- Moat's initial schema, SQLite. Times are integer Unix nanoseconds, UTC.
-- Lists (mx, rua) are JSON arrays of strings.

-- +goose Up
CREATE TABLE domains (
    name       TEXT    NOT NULL PRIMARY KEY,
    mode       TEXT    NOT NULL,
    mx         TEXT    NOT NULL,
    max_age    INTEGER NOT NULL,
    rua        TEXT    NOT NULL,
    policy_id  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE policy_versions (
    domain     TEXT    NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    policy_id  TEXT    NOT NULL,
    mode       TEXT    NOT NULL,
    mx         TEXT    NOT NULL,
    max_age    INTEGER NOT NULL,
    policy     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (domain, version)
) STRICT, WITHOUT ROWID;

CREATE TABLE kv (
    key      TEXT    NOT NULL PRIMARY KEY,
    value    BLOB    NOT NULL,
    modified INTEGER NOT NULL
) STRICT;

CREATE TABLE locks (
    name    TEXT    NOT NULL PRIMARY KEY,
    owner   TEXT    NOT NULL,
    expires INTEGER NOT NULL
) STRICT;

-- One row; value grows in every transaction that changes domains.
CREATE TABLE change_serial (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
) STRICT;
INSERT INTO change_serial (id, value) VALUES (1, 0);

-- +goose Down
DROP TABLE change_serial;
DROP TABLE locks;
DROP TABLE kv;
DROP TABLE policy_versions;
DROP TABLE domains;
