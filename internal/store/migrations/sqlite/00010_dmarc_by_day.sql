-- The DMARC message counts per domain, day and DMARC result, derived from
-- dmarc_daily (dmarc_sql.go adds to both in one transaction; retention
-- takes whole days of both): the summaries of all of an organization's
-- domains read it instead of summing the wide rows of dmarc_daily.
-- SQLite.

-- +goose Up
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

-- +goose Down
DROP TABLE dmarc_by_day;
