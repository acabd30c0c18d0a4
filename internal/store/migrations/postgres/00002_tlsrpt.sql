-- TLS-RPT reports (RFC 8460), PostgreSQL. Keys use COLLATE "C" so that
-- ordering is bytewise, as on SQLite; lists are JSON arrays of strings in
-- text columns. See reports_sql.go for how rows are written and read.

-- +goose Up

-- One row per received report. raw is the report as received, gzip-compressed
-- by the store when raw_gzip, or stored as is otherwise (the report arrived
-- compressed already, or compression would not shrink it). normalized is gzip
-- of the normalized report JSON, or empty. start_time and end_time are the
-- report's period. dated says which of them the report stated (bit 1: start,
-- bit 2: end); a missing one is filled in from the other, or from
-- received_at when both are missing, so that period filters and ordering
-- treat an undated report as one of the moment it arrived.
CREATE TABLE tlsrpt_reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   timestamptz NOT NULL,
    source        text        NOT NULL,
    source_detail text        NOT NULL,
    raw           bytea       NOT NULL,
    raw_gzip      boolean     NOT NULL,
    raw_size      bigint      NOT NULL,
    digest        text COLLATE "C" NOT NULL UNIQUE,
    media_type    text        NOT NULL,
    dkim          text        NOT NULL,
    status        text COLLATE "C" NOT NULL,
    error         text        NOT NULL,
    warnings      text        NOT NULL,
    organization  text COLLATE "C" NOT NULL,
    report_id     text COLLATE "C" NOT NULL,
    contact       text        NOT NULL,
    dated         smallint    NOT NULL,
    start_time    timestamptz NOT NULL,
    end_time      timestamptz NOT NULL,
    domains       text        NOT NULL,
    hosted        boolean     NOT NULL,
    successful    bigint      NOT NULL,
    failed        bigint      NOT NULL,
    normalized    bytea       NOT NULL
);

-- A parsed report is identified by its organization and report id (RFC 8460
-- §4.4); reports lacking either are deduplicated by digest only.
CREATE UNIQUE INDEX tlsrpt_reports_org_report ON tlsrpt_reports (organization, report_id)
    WHERE organization <> '' AND report_id <> '';
-- Listing all reports, newest period first, from a period bound.
CREATE INDEX tlsrpt_reports_end ON tlsrpt_reports (end_time, id);
CREATE INDEX tlsrpt_reports_status_end ON tlsrpt_reports (status, end_time, id);

-- The policy domains of each report, with the report's period copied in, so
-- that listing a domain's reports over a period is one range of the primary
-- key (an index-only scan).
CREATE TABLE tlsrpt_report_domains (
    domain     text COLLATE "C" NOT NULL,
    end_time   timestamptz NOT NULL,
    report     bigint      NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    start_time timestamptz NOT NULL,
    PRIMARY KEY (domain, end_time, report) INCLUDE (start_time)
);
CREATE INDEX tlsrpt_report_domains_report ON tlsrpt_report_domains (report);

-- The policies of each report, in report order (idx from 0).
CREATE TABLE tlsrpt_policies (
    report      bigint  NOT NULL REFERENCES tlsrpt_reports (id) ON DELETE CASCADE,
    idx         integer NOT NULL,
    policy_type text    NOT NULL,
    domain      text COLLATE "C" NOT NULL,
    strings     text    NOT NULL,
    mx_hosts    text    NOT NULL,
    successful  bigint  NOT NULL,
    failed      bigint  NOT NULL,
    PRIMARY KEY (report, idx)
);

-- The failure details of each policy, in report order.
CREATE TABLE tlsrpt_failures (
    report          bigint  NOT NULL,
    policy          integer NOT NULL,
    idx             integer NOT NULL,
    result_type     text    NOT NULL,
    sending_ip      text    NOT NULL,
    receiving_mx    text    NOT NULL,
    receiving_helo  text    NOT NULL,
    receiving_ip    text    NOT NULL,
    sessions        bigint  NOT NULL,
    reason_code     text    NOT NULL,
    additional_info text    NOT NULL,
    PRIMARY KEY (report, policy, idx),
    FOREIGN KEY (report, policy) REFERENCES tlsrpt_policies (report, idx) ON DELETE CASCADE
);

-- Daily session counts, summed over every stored report; what analysis
-- reads (never the rows above). day is UTC midnight. Queries by domain and
-- day range are ranges of the primary key; queries over all domains use the
-- day index.
CREATE TABLE tlsrpt_daily (
    domain       text COLLATE "C" NOT NULL,
    day          timestamptz NOT NULL,
    policy_type  text COLLATE "C" NOT NULL,
    result_type  text COLLATE "C" NOT NULL,
    organization text COLLATE "C" NOT NULL,
    sending_ip   text COLLATE "C" NOT NULL,
    receiving_mx text COLLATE "C" NOT NULL,
    sessions     bigint      NOT NULL,
    PRIMARY KEY (domain, day, policy_type, result_type, organization, sending_ip, receiving_mx)
);
CREATE INDEX tlsrpt_daily_day ON tlsrpt_daily (day);

-- +goose Down
DROP TABLE tlsrpt_daily;
DROP TABLE tlsrpt_failures;
DROP TABLE tlsrpt_policies;
DROP TABLE tlsrpt_report_domains;
DROP TABLE tlsrpt_reports;
