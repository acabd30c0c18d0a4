-- DMARC reports (RFC 7489 §7.2 and appendix C, RFC 9990; failure reports
-- RFC 6591), SQLite. Times are integer Unix nanoseconds, UTC; lists are
-- JSON arrays of strings. See dmarc_sql.go for how rows are written and
-- read. Records of aggregate reports are not rows: they are summed into
-- dmarc_daily, and a report's records are read back by decoding its raw
-- bytes.

-- +goose Up

-- One row per received aggregate report. raw is the report as received,
-- gzip-compressed by the store when raw_gzip = 1, or stored as is when it
-- arrived compressed. digest is the SHA-256 of raw: the same bytes twice
-- are one report. The identity of a report is its organization, report id
-- and period as stated (begin_s and end_s, Unix seconds, 0 when absent):
-- one stored report holds it (status not invalid, conflict_of NULL);
-- content_digest, a SHA-256 of the decoded report (header and records),
-- tells a copy of it (a duplicate) from a different report under the same
-- identity, which is kept with conflict_of naming the holder and does not
-- count in dmarc_daily. start_time and end_time order and filter reports
-- by period; dated says which ends the report stated (bit 1: begin, bit 2:
-- end), a missing one being filled in from the other or from received_at.
-- pct is -1 when the report does not state it.
CREATE TABLE dmarc_reports (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    INTEGER NOT NULL,
    source         TEXT    NOT NULL,
    source_detail  TEXT    NOT NULL,
    raw            BLOB    NOT NULL,
    raw_gzip       INTEGER NOT NULL,
    raw_size       INTEGER NOT NULL,
    digest         TEXT    NOT NULL UNIQUE,
    media_type     TEXT    NOT NULL,
    dkim           TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('ok', 'warnings', 'invalid')),
    error          TEXT    NOT NULL,
    warnings       TEXT    NOT NULL,
    conflict_of    INTEGER REFERENCES dmarc_reports (id),
    org_name       TEXT    NOT NULL,
    org_email      TEXT    NOT NULL,
    extra_contact  TEXT    NOT NULL,
    report_id      TEXT    NOT NULL,
    begin_s        INTEGER NOT NULL,
    end_s          INTEGER NOT NULL,
    dated          INTEGER NOT NULL,
    start_time     INTEGER NOT NULL,
    end_time       INTEGER NOT NULL,
    version        TEXT    NOT NULL,
    domain         TEXT    NOT NULL,
    adkim          TEXT    NOT NULL,
    aspf           TEXT    NOT NULL,
    p              TEXT    NOT NULL,
    sp             TEXT    NOT NULL,
    np             TEXT    NOT NULL,
    pct            INTEGER NOT NULL,
    testing        TEXT    NOT NULL,
    fo             TEXT    NOT NULL,
    hosted         INTEGER NOT NULL,
    records        INTEGER NOT NULL,
    messages       INTEGER NOT NULL,
    content_digest TEXT    NOT NULL
) STRICT;
CREATE UNIQUE INDEX dmarc_reports_identity ON dmarc_reports (org_name, report_id, begin_s, end_s)
    WHERE status <> 'invalid' AND conflict_of IS NULL;
CREATE INDEX dmarc_reports_same ON dmarc_reports (org_name, report_id, begin_s, end_s, content_digest);
CREATE INDEX dmarc_reports_end ON dmarc_reports (end_time, id);
CREATE INDEX dmarc_reports_domain_end ON dmarc_reports (domain, end_time, id);
CREATE INDEX dmarc_reports_status_end ON dmarc_reports (status, end_time, id);

-- Daily message counts of the aggregate reports' records, summed over
-- every stored report (conflicts and invalid reports left out): what every
-- view reads. day is UTC midnight of the middle of the report's period;
-- domain the policy domain; reporter the reporting organization. dkim and
-- spf are the DMARC-aligned results the receiver evaluated
-- (policy_evaluated); dkim_domain, dkim_selector and dkim_result the
-- signature of the auth results that best explains them, and dkim_aligned
-- whether its domain aligns with header_from under the report's adkim;
-- spf_domain, spf_result and spf_aligned likewise for SPF. reason lists the
-- override reasons, comma-separated.
CREATE TABLE dmarc_daily (
    domain        TEXT    NOT NULL,
    day           INTEGER NOT NULL,
    reporter      TEXT    NOT NULL,
    source_ip     TEXT    NOT NULL,
    header_from   TEXT    NOT NULL,
    envelope_from TEXT    NOT NULL,
    disposition   TEXT    NOT NULL,
    dkim          TEXT    NOT NULL,
    spf           TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    dkim_domain   TEXT    NOT NULL,
    dkim_selector TEXT    NOT NULL,
    dkim_result   TEXT    NOT NULL,
    dkim_aligned  INTEGER NOT NULL,
    spf_domain    TEXT    NOT NULL,
    spf_result    TEXT    NOT NULL,
    spf_aligned   INTEGER NOT NULL,
    messages      INTEGER NOT NULL,
    PRIMARY KEY (domain, day, reporter, source_ip, header_from, envelope_from, disposition, dkim, spf, reason,
        dkim_domain, dkim_selector, dkim_result, dkim_aligned, spf_domain, spf_result, spf_aligned)
) STRICT, WITHOUT ROWID;
CREATE INDEX dmarc_daily_day ON dmarc_daily (day);

-- One row per received failure report (RFC 6591). raw (the message) and
-- parsed (the JSON of what was read from it, addresses and subjects
-- included) are only ever kept compressed: sealed = '' says they are gzip
-- of the plain text, and is where their encryption to an organization's key
-- will be marked. The other columns hold nothing personal: no address or
-- subject is stored in a column of its own or indexed. domain is the
-- reported domain; reporter the domain of the report mail's sender.
CREATE TABLE dmarc_failures (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at        INTEGER NOT NULL,
    source             TEXT    NOT NULL,
    source_detail      TEXT    NOT NULL,
    raw                BLOB    NOT NULL,
    raw_size           INTEGER NOT NULL,
    digest             TEXT    NOT NULL UNIQUE,
    dkim               TEXT    NOT NULL,
    sealed             TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('ok', 'warnings')),
    warnings           TEXT    NOT NULL,
    domain             TEXT    NOT NULL,
    reporter           TEXT    NOT NULL,
    feedback_type      TEXT    NOT NULL,
    auth_failure       TEXT    NOT NULL,
    delivery_result    TEXT    NOT NULL,
    source_ip          TEXT    NOT NULL,
    arrival_at         INTEGER,
    reporting_mta      TEXT    NOT NULL,
    user_agent         TEXT    NOT NULL,
    dkim_domain        TEXT    NOT NULL,
    dkim_selector      TEXT    NOT NULL,
    spf_dns            TEXT    NOT NULL,
    identity_alignment TEXT    NOT NULL,
    incidents          INTEGER NOT NULL,
    parsed             BLOB    NOT NULL
) STRICT;
CREATE INDEX dmarc_failures_received ON dmarc_failures (received_at, id);
CREATE INDEX dmarc_failures_domain ON dmarc_failures (domain, received_at, id);

-- The intake log learns the kind of each submission and the DMARC reports
-- it stored, and the outcome conflict. SQLite cannot change a CHECK
-- constraint: the table is rebuilt with the same ids.
CREATE TABLE intake_log_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    kind          TEXT    NOT NULL DEFAULT 'tlsrpt' CHECK (kind IN ('tlsrpt', 'dmarc', 'dmarc-failure')),
    source        TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('stored', 'duplicate', 'invalid', 'conflict')),
    report        INTEGER REFERENCES tlsrpt_reports (id) ON DELETE SET NULL,
    dmarc_report  INTEGER REFERENCES dmarc_reports (id) ON DELETE SET NULL,
    dmarc_failure INTEGER REFERENCES dmarc_failures (id) ON DELETE SET NULL,
    reason        TEXT    NOT NULL,
    reporter      TEXT    NOT NULL,
    report_name   TEXT    NOT NULL,
    domains       TEXT    NOT NULL
) STRICT;
INSERT INTO intake_log_new (id, at, kind, source, detail, outcome, report, reason, reporter, report_name, domains)
    SELECT id, at, 'tlsrpt', source, detail, outcome, report, reason, reporter, report_name, domains FROM intake_log;
-- AUTOINCREMENT: ids once handed out (of rows deleted since) stay used.
DELETE FROM sqlite_sequence WHERE name = 'intake_log_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'intake_log_new', seq FROM sqlite_sequence WHERE name = 'intake_log';
DROP TABLE intake_log;
ALTER TABLE intake_log_new RENAME TO intake_log;
CREATE INDEX intake_log_at ON intake_log (at);
CREATE INDEX intake_log_report ON intake_log (report);
CREATE INDEX intake_log_dmarc_report ON intake_log (dmarc_report);
CREATE INDEX intake_log_dmarc_failure ON intake_log (dmarc_failure);

-- +goose Down
CREATE TABLE intake_log_old (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('stored', 'duplicate', 'invalid')),
    report      INTEGER REFERENCES tlsrpt_reports (id) ON DELETE SET NULL,
    reason      TEXT    NOT NULL,
    reporter    TEXT    NOT NULL,
    report_name TEXT    NOT NULL,
    domains     TEXT    NOT NULL
) STRICT;
INSERT INTO intake_log_old (id, at, source, detail, outcome, report, reason, reporter, report_name, domains)
    SELECT id, at, source, detail, outcome, report, reason, reporter, report_name, domains FROM intake_log
    WHERE kind = 'tlsrpt';
DELETE FROM sqlite_sequence WHERE name = 'intake_log_old';
INSERT INTO sqlite_sequence (name, seq) SELECT 'intake_log_old', seq FROM sqlite_sequence WHERE name = 'intake_log';
DROP TABLE intake_log;
ALTER TABLE intake_log_old RENAME TO intake_log;
CREATE INDEX intake_log_at ON intake_log (at);
CREATE INDEX intake_log_report ON intake_log (report);
DROP TABLE dmarc_failures;
DROP TABLE dmarc_daily;
DROP TABLE dmarc_reports;
