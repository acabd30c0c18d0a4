-- What is learned about the sources of DMARC reports, PostgreSQL: reverse
-- DNS of source IP addresses, and whether a domain's own SPF record
-- authorizes a source. See the SQLite migration of the same number for
-- what each column holds, and senders.go.

-- +goose Up

CREATE TABLE ptr_cache (
    ip         text COLLATE "C" NOT NULL PRIMARY KEY,
    names      text        NOT NULL,
    confirmed  text        NOT NULL,
    error      text        NOT NULL,
    checked_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX ptr_cache_expires ON ptr_cache (expires_at);

CREATE TABLE spf_auth_cache (
    domain     text COLLATE "C" NOT NULL,
    source_ip  text COLLATE "C" NOT NULL,
    day        timestamptz NOT NULL,
    result     text        NOT NULL,
    error      text        NOT NULL,
    checked_at timestamptz NOT NULL,
    PRIMARY KEY (domain, source_ip, day)
);
CREATE INDEX spf_auth_cache_day ON spf_auth_cache (day);

-- +goose Down
DROP TABLE spf_auth_cache;
DROP TABLE ptr_cache;
