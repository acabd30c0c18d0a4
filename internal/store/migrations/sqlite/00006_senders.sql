-- What is learned about the sources of DMARC reports, SQLite: reverse DNS
-- of source IP addresses, and whether a domain's own SPF record authorizes
-- a source. Both are caches of DNS answers, shared by every organization
-- (DNS is public), filled off the request and intake paths by package
-- senders. Times are integer Unix nanoseconds, UTC. See senders.go.

-- +goose Up

-- One row per source IP address (its canonical text form). names are the
-- PTR names found (a JSON array, lower case, without the trailing dot, at
-- most a few); confirmed is the first of them whose forward lookup (A or
-- AAAA) gives the address back, '' when none does (forward-confirmed
-- reverse DNS). error says why there is no name: 'nxdomain' (no PTR
-- record), 'timeout', 'servfail' or another failure, '' when names were
-- found. A row is used until expires_at; negative answers get a shorter
-- lifetime than names.
CREATE TABLE ptr_cache (
    ip         TEXT    NOT NULL PRIMARY KEY,
    names      TEXT    NOT NULL,
    confirmed  TEXT    NOT NULL,
    error      TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX ptr_cache_expires ON ptr_cache (expires_at);

-- Whether the SPF record of domain authorizes source_ip, evaluated once
-- per UTC day (day is its midnight): result is the RFC 7208 §2.6 result of
-- check_host() for postmaster@domain ('pass', 'fail', 'softfail',
-- 'neutral', 'none', 'temperror', 'permerror'), error the detail of an
-- error result.
CREATE TABLE spf_auth_cache (
    domain     TEXT    NOT NULL,
    source_ip  TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    result     TEXT    NOT NULL,
    error      TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (domain, source_ip, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX spf_auth_cache_day ON spf_auth_cache (day);

-- +goose Down
DROP TABLE spf_auth_cache;
DROP TABLE ptr_cache;
