-- Moat's initial schema, PostgreSQL. Keys and names use COLLATE "C" so that
-- ordering and the key ranges of List and Delete are bytewise, as on SQLite.
-- Lists (mx, rua) are JSON arrays of strings in text columns.

-- +goose Up
CREATE TABLE domains (
    name       text COLLATE "C" NOT NULL PRIMARY KEY,
    mode       text        NOT NULL,
    mx         text        NOT NULL,
    max_age    bigint      NOT NULL,
    rua        text        NOT NULL,
    policy_id  text        NOT NULL,
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE policy_versions (
    domain     text COLLATE "C" NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
    version    bigint      NOT NULL,
    policy_id  text        NOT NULL,
    mode       text        NOT NULL,
    mx         text        NOT NULL,
    max_age    bigint      NOT NULL,
    policy     text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (domain, version)
);

CREATE TABLE kv (
    key      text COLLATE "C" NOT NULL PRIMARY KEY,
    value    bytea       NOT NULL,
    modified timestamptz NOT NULL
);

CREATE TABLE locks (
    name    text COLLATE "C" NOT NULL PRIMARY KEY,
    owner   text        NOT NULL,
    expires timestamptz NOT NULL
);

-- One row; value grows in every transaction that changes domains.
CREATE TABLE change_serial (
    id    integer NOT NULL PRIMARY KEY CHECK (id = 1),
    value bigint  NOT NULL
);
INSERT INTO change_serial (id, value) VALUES (1, 0);

-- +goose Down
DROP TABLE change_serial;
DROP TABLE locks;
DROP TABLE kv;
DROP TABLE policy_versions;
DROP TABLE domains;
