-- TLS-RPT reports (RFC 8460), SQLite. Times are integer Unix nanoseconds,
-- UTC; lists are JSON arrays of strings. See reports_sql.go for how rows are
-- written and read.

-- +goose Up

-- One row per received report. raw is the report as received, gzip-compressed
-- by the store when raw_gzip = 1, or stored as is when raw_gzip = 0 (the
-- report arrived compressed already, or compression would not shrink it).
-- normalized is gzip of the normalized report JSON, or empty. start_time and
-- end_time are the report's period. dated says which of them the report
-- stated (bit 1: start, bit 2: end); a missing one is filled in from the
-- other, or from received_at when both are missing, so that period filters
-- and ordering treat an undated report as one of the moment it arrived.
CREATE TABLE tlsrpt_reports (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at   INTEGER NOT NULL,
    source        TEXT    NOT NULL,
    source_detail TEXT    NOT NULL,
    raw           BLOB    NOT NULL,
    raw_gzip      INTEGER NOT NULL,
    raw_size      INTEGER NOT NULL,
    digest        TEXT    NOT NULL UNIQUE,
    media_type    TEXT    NOT NULL,
    dkim          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    error         TEXT    NOT NULL,
    warnings      TEXT    NOT NULL,
    organization  TEXT    NOT NULL,
    report_id     TEXT    NOT NULL,
    contact       TEXT    NOT NULL,
    dated         INTEGER NOT NULL,
    start_time    INTEGER NOT NULL,
    end_time      INTEGER NOT NULL,
    domains       TEXT    NOT NULL,
    hosted        INTEGER NOT NULL,
    successful    INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    normalized    BLOB    NOT NULL
) STRICT;

-- A parsed report is identified by its organization and report id (RFC 8460
-- §4.4); reports lacking either are deduplicated by digest only.
CREATE UNIQUE INDEX tlsrpt_reports_org_report ON tlsrpt_reports (organization, report_id)
    WHERE organization <> '' AND report_id <> '';
-- Listing all reports, newest period first, from a period bound.
CREATE INDEX tlsrpt_reports_end ON tlsrpt_reports (end_time, id);
CREATE INDEX tlsrpt_reports_status_end ON tlsrpt_reports (status, end_time, id);

-- The policy domains of each report, with the report's period copied in, so
-- that listing a domain's reports over a period is one range of this table.
CREATE TABLE tlsrpt_report_domains (
    domain     TEXT    NOT NULL,
    end_time   INTEGER NOT NULL,
    report     INTEGER NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    start_time INTEGER NOT NULL,
    PRIMARY KEY (domain, end_time, report)
) STRICT, WITHOUT ROWID;
CREATE INDEX tlsrpt_report_domains_report ON tlsrpt_report_domains (report);

-- The policies of each report, in report order (idx from 0).
CREATE TABLE tlsrpt_policies (
    report      INTEGER NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    policy_type TEXT    NOT NULL,
    domain      TEXT    NOT NULL,
    strings     TEXT    NOT NULL,
    mx_hosts    TEXT    NOT NULL,
    successful  INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    PRIMARY KEY (report, idx)
) STRICT, WITHOUT ROWID;

-- The failure details of each policy, in report order.
CREATE TABLE tlsrpt_failures (
    report          INTEGER NOT NULL,
    policy          INTEGER NOT NULL,
    idx             INTEGER NOT NULL,
    result_type     TEXT    NOT NULL,
    sending_ip      TEXT    NOT NULL,
    receiving_mx    TEXT    NOT NULL,
    receiving_helo  TEXT    NOT NULL,
    receiving_ip    TEXT    NOT NULL,
    sessions        INTEGER NOT NULL,
    reason_code     TEXT    NOT NULL,
    additional_info TEXT    NOT NULL,
    PRIMARY KEY (report, policy, idx),
    FOREIGN KEY (report, policy) REFERENCES tlsrpt_policies (report, idx) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Daily session counts, summed over every stored report; what analysis
-- reads (never the rows above). day is UTC midnight. Queries by domain and
-- day range are ranges of the primary key; queries over all domains use the
-- day index.
CREATE TABLE tlsrpt_daily (
    domain       TEXT    NOT NULL,
    day          INTEGER NOT NULL,
    policy_type  TEXT    NOT NULL,
    result_type  TEXT    NOT NULL,
    organization TEXT    NOT NULL,
    sending_ip   TEXT    NOT NULL,
    receiving_mx TEXT    NOT NULL,
    sessions     INTEGER NOT NULL,
    PRIMARY KEY (domain, day, policy_type, result_type, organization, sending_ip, receiving_mx)
) STRICT, WITHOUT ROWID;
CREATE INDEX tlsrpt_daily_day ON tlsrpt_daily (day);

-- +goose Down
DROP TABLE tlsrpt_daily;
DROP TABLE tlsrpt_failures;
DROP TABLE tlsrpt_policies;
DROP TABLE tlsrpt_report_domains;
DROP TABLE tlsrpt_reports;
