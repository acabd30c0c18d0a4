-- The DMARC message counts per day and domain, derived from dmarc_daily
-- (dmarc_sql.go adds to both in one transaction; retention takes whole
-- days of both): one narrow row per day and domain with the messages that
-- passed DKIM, SPF and DMARC as the reporters evaluated them. The
-- summaries of all of an organization's domains by day or by domain read
-- it instead of summing rows per DMARC result (dmarc_by_day, which had up
-- to four rows per day and domain and needed a sort to group by domain).
-- SQLite.

-- +goose Up
CREATE TABLE dmarc_totals (
    day        INTEGER NOT NULL,
    domain     TEXT    NOT NULL,
    messages   INTEGER NOT NULL,
    dkim_pass  INTEGER NOT NULL,
    spf_pass   INTEGER NOT NULL,
    dmarc_pass INTEGER NOT NULL,
    PRIMARY KEY (day, domain)
) STRICT, WITHOUT ROWID;
INSERT INTO dmarc_totals (day, domain, messages, dkim_pass, spf_pass, dmarc_pass)
    SELECT day, domain, SUM(messages),
        SUM(CASE WHEN dkim = 'pass' THEN messages ELSE 0 END),
        SUM(CASE WHEN spf = 'pass' THEN messages ELSE 0 END),
        SUM(CASE WHEN dkim = 'pass' OR spf = 'pass' THEN messages ELSE 0 END)
    FROM dmarc_daily GROUP BY day, domain;
DROP TABLE dmarc_by_day;

-- +goose Down
CREATE TABLE dmarc_by_day (
    day      INTEGER NOT NULL,
    domain   TEXT    NOT NULL,
    dkim     TEXT    NOT NULL,
    spf      TEXT    NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (day, domain, dkim, spf)
) STRICT, WITHOUT ROWID;
INSERT INTO dmarc_by_day (day, domain, dkim, spf, messages)
    SELECT day, domain, dkim, spf, SUM(messages) FROM dmarc_daily GROUP BY day, domain, dkim, spf;
DROP TABLE dmarc_totals;
