-- Coarser rollups derived from tlsrpt_daily, PostgreSQL: what the dashboard
-- and the API read when they sum the sessions of many domains. See
-- rollups.go for how they are kept and chosen.
--
-- Each table sums tlsrpt_daily over the columns it leaves out, per
-- organization hosting the domain (org_id; 0 for a domain nobody hosts)
-- and per block of days: span is the block's length as a power of two
-- (0: one day, 4: 16 days, 8: 256 days; tlsrpt_by_domain also keeps 2 and 6,
-- its rows being many) and day its first day (UTC
-- midnight), a multiple of 2^span days since 1970-01-01. Every block length
-- a table keeps covers every day, so a period is a few long blocks in its
-- middle and shorter ones at its ends.
--
-- Rows are never negative; a row of 0 sessions (left by a domain that was
-- deleted or hosted after its reports arrived) counts for nothing. The
-- primary keys include sessions: a summary is then an index-only scan of a
-- few ranges of them (half the time of reading the rows, measured at 1,000
-- domains and a year), for the price of updates that are never HOT.

-- +goose Up

-- Per reporting organization and result.
CREATE TABLE tlsrpt_by_reporter (
    org_id       bigint      NOT NULL,
    span         smallint    NOT NULL,
    day          timestamptz NOT NULL,
    policy_type  text COLLATE "C" NOT NULL,
    result_type  text COLLATE "C" NOT NULL,
    organization text COLLATE "C" NOT NULL,
    sessions     bigint      NOT NULL,
    PRIMARY KEY (org_id, span, day, policy_type, result_type, organization) INCLUDE (sessions)
);

-- Per sending organization and IP, and result.
CREATE TABLE tlsrpt_by_source (
    org_id       bigint      NOT NULL,
    span         smallint    NOT NULL,
    day          timestamptz NOT NULL,
    policy_type  text COLLATE "C" NOT NULL,
    result_type  text COLLATE "C" NOT NULL,
    organization text COLLATE "C" NOT NULL,
    sending_ip   text COLLATE "C" NOT NULL,
    sessions     bigint      NOT NULL,
    PRIMARY KEY (org_id, span, day, policy_type, result_type, organization, sending_ip) INCLUDE (sessions)
);

-- Per receiving MX and result.
CREATE TABLE tlsrpt_by_mx (
    org_id       bigint      NOT NULL,
    span         smallint    NOT NULL,
    day          timestamptz NOT NULL,
    policy_type  text COLLATE "C" NOT NULL,
    result_type  text COLLATE "C" NOT NULL,
    receiving_mx text COLLATE "C" NOT NULL,
    sessions     bigint      NOT NULL,
    PRIMARY KEY (org_id, span, day, policy_type, result_type, receiving_mx) INCLUDE (sessions)
);

-- Per policy domain and result.
CREATE TABLE tlsrpt_by_domain (
    org_id      bigint      NOT NULL,
    span        smallint    NOT NULL,
    day         timestamptz NOT NULL,
    domain      text COLLATE "C" NOT NULL,
    policy_type text COLLATE "C" NOT NULL,
    result_type text COLLATE "C" NOT NULL,
    sessions    bigint      NOT NULL,
    PRIMARY KEY (org_id, span, day, domain, policy_type, result_type) INCLUDE (sessions)
);

-- Backfill: the one-day rows from tlsrpt_daily and the hosting
-- organizations, then the longer blocks from the one-day rows. The first day
-- of a block is the day less its day number's remainder modulo the block's
-- length (a remainder that must not be negative: % keeps the sign of the
-- dividend, and days before 1970 are negative), in hours of 24, which
-- unlike days do not depend on the session's time zone.
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
    SELECT t.org_id, s.span,
        t.day - ((floor(extract(epoch FROM t.day) / 86400)::bigint % s.len + s.len) % s.len) * interval '24 hours',
        t.policy_type, t.result_type, t.organization, SUM(t.sessions)
    FROM tlsrpt_by_reporter t CROSS JOIN (VALUES (4, 16), (8, 256)) s (span, len)
    WHERE t.span = 0 GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO tlsrpt_by_source (org_id, span, day, policy_type, result_type, organization, sending_ip, sessions)
    SELECT t.org_id, s.span,
        t.day - ((floor(extract(epoch FROM t.day) / 86400)::bigint % s.len + s.len) % s.len) * interval '24 hours',
        t.policy_type, t.result_type, t.organization, t.sending_ip, SUM(t.sessions)
    FROM tlsrpt_by_source t CROSS JOIN (VALUES (4, 16), (8, 256)) s (span, len)
    WHERE t.span = 0 GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO tlsrpt_by_mx (org_id, span, day, policy_type, result_type, receiving_mx, sessions)
    SELECT t.org_id, s.span,
        t.day - ((floor(extract(epoch FROM t.day) / 86400)::bigint % s.len + s.len) % s.len) * interval '24 hours',
        t.policy_type, t.result_type, t.receiving_mx, SUM(t.sessions)
    FROM tlsrpt_by_mx t CROSS JOIN (VALUES (4, 16), (8, 256)) s (span, len)
    WHERE t.span = 0 GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO tlsrpt_by_domain (org_id, span, day, domain, policy_type, result_type, sessions)
    SELECT t.org_id, s.span,
        t.day - ((floor(extract(epoch FROM t.day) / 86400)::bigint % s.len + s.len) % s.len) * interval '24 hours',
        t.domain, t.policy_type, t.result_type, SUM(t.sessions)
    FROM tlsrpt_by_domain t CROSS JOIN (VALUES (2, 4), (4, 16), (6, 64), (8, 256)) s (span, len)
    WHERE t.span = 0 GROUP BY 1, 2, 3, 4, 5, 6;

-- +goose Down
DROP TABLE tlsrpt_by_domain;
DROP TABLE tlsrpt_by_mx;
DROP TABLE tlsrpt_by_source;
DROP TABLE tlsrpt_by_reporter;
