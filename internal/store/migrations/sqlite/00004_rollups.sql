-- Coarser rollups derived from tlsrpt_daily, SQLite: what the dashboard and
-- the API read when they sum the sessions of many domains. See rollups.go
-- for how they are kept and chosen.
--
-- Each table sums tlsrpt_daily over the columns it leaves out, per
-- organization hosting the domain (org_id; 0 for a domain nobody hosts)
-- and per block of days: span is the block's length as a power of two
-- (0: one day, 4: 16 days, 8: 256 days; tlsrpt_by_domain also keeps 2 and 6,
-- its rows being many) and day its first day (UTC
-- midnight, Unix nanoseconds), a multiple of 2^span days since 1970-01-01.
-- Every block length a table keeps covers every day, so a period is a few
-- long blocks in its middle and shorter ones at its ends.
--
-- Rows are never negative; a row of 0 sessions (left by a domain that was
-- deleted or hosted after its reports arrived) counts for nothing.

-- +goose Up

-- Per reporting organization and result.
CREATE TABLE tlsrpt_by_reporter (
    org_id       INTEGER NOT NULL,
    span         INTEGER NOT NULL,
    day          INTEGER NOT NULL,
    policy_type  TEXT    NOT NULL,
    result_type  TEXT    NOT NULL,
    organization TEXT    NOT NULL,
    sessions     INTEGER NOT NULL,
    PRIMARY KEY (org_id, span, day, policy_type, result_type, organization)
) STRICT, WITHOUT ROWID;

-- Per sending organization and IP, and result.
CREATE TABLE tlsrpt_by_source (
    org_id       INTEGER NOT NULL,
    span         INTEGER NOT NULL,
    day          INTEGER NOT NULL,
    policy_type  TEXT    NOT NULL,
    result_type  TEXT    NOT NULL,
    organization TEXT    NOT NULL,
    sending_ip   TEXT    NOT NULL,
    sessions     INTEGER NOT NULL,
    PRIMARY KEY (org_id, span, day, policy_type, result_type, organization, sending_ip)
) STRICT, WITHOUT ROWID;

-- Per receiving MX and result.
CREATE TABLE tlsrpt_by_mx (
    org_id       INTEGER NOT NULL,
    span         INTEGER NOT NULL,
    day          INTEGER NOT NULL,
    policy_type  TEXT    NOT NULL,
    result_type  TEXT    NOT NULL,
    receiving_mx TEXT    NOT NULL,
    sessions     INTEGER NOT NULL,
    PRIMARY KEY (org_id, span, day, policy_type, result_type, receiving_mx)
) STRICT, WITHOUT ROWID;

-- Per policy domain and result.
CREATE TABLE tlsrpt_by_domain (
    org_id      INTEGER NOT NULL,
    span        INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    domain      TEXT    NOT NULL,
    policy_type TEXT    NOT NULL,
    result_type TEXT    NOT NULL,
    sessions    INTEGER NOT NULL,
    PRIMARY KEY (org_id, span, day, domain, policy_type, result_type)
) STRICT, WITHOUT ROWID;

-- Backfill: the one-day rows from tlsrpt_daily and the hosting
-- organizations, then the longer blocks from the one-day rows. The first day
-- of a block is the day less its remainder modulo the block's length, a
-- remainder that must not be negative (SQLite's % keeps the sign of the
-- dividend, and days before 1970 are negative).
INSERT INTO tlsrpt_by_source (org_id, span, day, policy_type, result_type, organization, sending_ip, sessions)
    SELECT COALESCE(d.org_id, 0), 0, t.day, t.policy_type, t.result_type, t.organization, t.sending_ip, SUM(t.sessions)
    FROM tlsrpt_daily t LEFT JOIN domains d ON d.name = t.domain GROUP BY 1, 3, 4, 5, 6, 7;
INSERT INTO tlsrpt_by_reporter (org_id, span, day, policy_type, result_type, organization, sessions)
    SELECT org_id, 0, day, policy_type, result_type, organization, SUM(sessions)
    FROM tlsrpt_by_source GROUP BY 1, 3, 4, 5, 6;
INSERT INTO tlsrpt_by_mx (org_id, span, day, policy_type, result_type, receiving_mx, sessions)
    SELECT COALESCE(d.org_id, 0), 0, t.day, t.policy_type, t.result_type, t.receiving_mx, SUM(t.sessions)
    FROM tlsrpt_daily t LEFT JOIN domains d ON d.name = t.domain GROUP BY 1, 3, 4, 5, 6;
INSERT INTO tlsrpt_by_domain (org_id, span, day, domain, policy_type, result_type, sessions)
    SELECT COALESCE(d.org_id, 0), 0, t.day, t.domain, t.policy_type, t.result_type, SUM(t.sessions)
    FROM tlsrpt_daily t LEFT JOIN domains d ON d.name = t.domain GROUP BY 1, 3, 4, 5, 6;

INSERT INTO tlsrpt_by_reporter (org_id, span, day, policy_type, result_type, organization, sessions)
    WITH spans (span, ns) AS (VALUES (4, 16 * 86400000000000), (8, 256 * 86400000000000))
    SELECT t.org_id, s.span, t.day - ((t.day % s.ns) + s.ns) % s.ns, t.policy_type, t.result_type, t.organization,
        SUM(t.sessions)
    FROM tlsrpt_by_reporter t CROSS JOIN spans s WHERE t.span = 0 GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO tlsrpt_by_source (org_id, span, day, policy_type, result_type, organization, sending_ip, sessions)
    WITH spans (span, ns) AS (VALUES (4, 16 * 86400000000000), (8, 256 * 86400000000000))
    SELECT t.org_id, s.span, t.day - ((t.day % s.ns) + s.ns) % s.ns, t.policy_type, t.result_type, t.organization,
        t.sending_ip, SUM(t.sessions)
    FROM tlsrpt_by_source t CROSS JOIN spans s WHERE t.span = 0 GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO tlsrpt_by_mx (org_id, span, day, policy_type, result_type, receiving_mx, sessions)
    WITH spans (span, ns) AS (VALUES (4, 16 * 86400000000000), (8, 256 * 86400000000000))
    SELECT t.org_id, s.span, t.day - ((t.day % s.ns) + s.ns) % s.ns, t.policy_type, t.result_type, t.receiving_mx,
        SUM(t.sessions)
    FROM tlsrpt_by_mx t CROSS JOIN spans s WHERE t.span = 0 GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO tlsrpt_by_domain (org_id, span, day, domain, policy_type, result_type, sessions)
    WITH spans (span, ns) AS (VALUES (2, 4 * 86400000000000), (4, 16 * 86400000000000),
        (6, 64 * 86400000000000), (8, 256 * 86400000000000))
    SELECT t.org_id, s.span, t.day - ((t.day % s.ns) + s.ns) % s.ns, t.domain, t.policy_type, t.result_type,
        SUM(t.sessions)
    FROM tlsrpt_by_domain t CROSS JOIN spans s WHERE t.span = 0 GROUP BY 1, 2, 3, 4, 5, 6;

-- +goose Down
DROP TABLE tlsrpt_by_domain;
DROP TABLE tlsrpt_by_mx;
DROP TABLE tlsrpt_by_source;
DROP TABLE tlsrpt_by_reporter;
