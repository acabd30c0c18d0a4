-- DMARC reports (RFC 7489 §7.2 and appendix C, RFC 9990; failure reports
-- RFC 6591), PostgreSQL. Keys use COLLATE "C" so that ordering is bytewise,
-- as on SQLite; lists are JSON arrays of strings in text columns. See
-- dmarc_sql.go for how rows are written and read, and the SQLite migration
-- of the same number for what each column holds.

-- +goose Up

CREATE TABLE dmarc_reports (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at    timestamptz NOT NULL,
    source         text        NOT NULL,
    source_detail  text        NOT NULL,
    raw            bytea       NOT NULL,
    raw_gzip       boolean     NOT NULL,
    raw_size       bigint      NOT NULL,
    digest         text COLLATE "C" NOT NULL UNIQUE,
    media_type     text        NOT NULL,
    dkim           text        NOT NULL,
    status         text COLLATE "C" NOT NULL CHECK (status IN ('ok', 'warnings', 'invalid')),
    error          text        NOT NULL,
    warnings       text        NOT NULL,
    conflict_of    bigint      REFERENCES dmarc_reports (id),
    org_name       text COLLATE "C" NOT NULL,
    org_email      text        NOT NULL,
    extra_contact  text        NOT NULL,
    report_id      text COLLATE "C" NOT NULL,
    begin_s        bigint      NOT NULL,
    end_s          bigint      NOT NULL,
    dated          smallint    NOT NULL,
    start_time     timestamptz NOT NULL,
    end_time       timestamptz NOT NULL,
    version        text        NOT NULL,
    domain         text COLLATE "C" NOT NULL,
    adkim          text        NOT NULL,
    aspf           text        NOT NULL,
    p              text        NOT NULL,
    sp             text        NOT NULL,
    np             text        NOT NULL,
    pct            integer     NOT NULL,
    testing        text        NOT NULL,
    fo             text        NOT NULL,
    hosted         boolean     NOT NULL,
    records        bigint      NOT NULL,
    messages       bigint      NOT NULL,
    content_digest text COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX dmarc_reports_identity ON dmarc_reports (org_name, report_id, begin_s, end_s)
    WHERE status <> 'invalid' AND conflict_of IS NULL;
CREATE INDEX dmarc_reports_same ON dmarc_reports (org_name, report_id, begin_s, end_s, content_digest);
CREATE INDEX dmarc_reports_end ON dmarc_reports (end_time, id);
CREATE INDEX dmarc_reports_domain_end ON dmarc_reports (domain, end_time, id);
CREATE INDEX dmarc_reports_status_end ON dmarc_reports (status, end_time, id);

CREATE TABLE dmarc_daily (
    domain        text COLLATE "C" NOT NULL,
    day           timestamptz NOT NULL,
    reporter      text COLLATE "C" NOT NULL,
    source_ip     text COLLATE "C" NOT NULL,
    header_from   text COLLATE "C" NOT NULL,
    envelope_from text COLLATE "C" NOT NULL,
    disposition   text COLLATE "C" NOT NULL,
    dkim          text COLLATE "C" NOT NULL,
    spf           text COLLATE "C" NOT NULL,
    reason        text COLLATE "C" NOT NULL,
    dkim_domain   text COLLATE "C" NOT NULL,
    dkim_selector text COLLATE "C" NOT NULL,
    dkim_result   text COLLATE "C" NOT NULL,
    dkim_aligned  boolean     NOT NULL,
    spf_domain    text COLLATE "C" NOT NULL,
    spf_result    text COLLATE "C" NOT NULL,
    spf_aligned   boolean     NOT NULL,
    messages      bigint      NOT NULL,
    PRIMARY KEY (domain, day, reporter, source_ip, header_from, envelope_from, disposition, dkim, spf, reason,
        dkim_domain, dkim_selector, dkim_result, dkim_aligned, spf_domain, spf_result, spf_aligned)
);
CREATE INDEX dmarc_daily_day ON dmarc_daily (day);

CREATE TABLE dmarc_failures (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at        timestamptz NOT NULL,
    source             text        NOT NULL,
    source_detail      text        NOT NULL,
    raw                bytea       NOT NULL,
    raw_size           bigint      NOT NULL,
    digest             text COLLATE "C" NOT NULL UNIQUE,
    dkim               text        NOT NULL,
    sealed             text        NOT NULL,
    status             text COLLATE "C" NOT NULL CHECK (status IN ('ok', 'warnings')),
    warnings           text        NOT NULL,
    domain             text COLLATE "C" NOT NULL,
    reporter           text        NOT NULL,
    feedback_type      text        NOT NULL,
    auth_failure       text        NOT NULL,
    delivery_result    text        NOT NULL,
    source_ip          text        NOT NULL,
    arrival_at         timestamptz,
    reporting_mta      text        NOT NULL,
    user_agent         text        NOT NULL,
    dkim_domain        text        NOT NULL,
    dkim_selector      text        NOT NULL,
    spf_dns            text        NOT NULL,
    identity_alignment text        NOT NULL,
    incidents          bigint      NOT NULL,
    parsed             bytea       NOT NULL
);
CREATE INDEX dmarc_failures_received ON dmarc_failures (received_at, id);
CREATE INDEX dmarc_failures_domain ON dmarc_failures (domain, received_at, id);

ALTER TABLE intake_log ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT 'tlsrpt'
    CHECK (kind IN ('tlsrpt', 'dmarc', 'dmarc-failure'));
ALTER TABLE intake_log ADD COLUMN dmarc_report bigint REFERENCES dmarc_reports (id) ON DELETE SET NULL;
ALTER TABLE intake_log ADD COLUMN dmarc_failure bigint REFERENCES dmarc_failures (id) ON DELETE SET NULL;
ALTER TABLE intake_log DROP CONSTRAINT intake_log_outcome_check;
ALTER TABLE intake_log ADD CONSTRAINT intake_log_outcome_check
    CHECK (outcome IN ('stored', 'duplicate', 'invalid', 'conflict'));
CREATE INDEX intake_log_dmarc_report ON intake_log (dmarc_report);
CREATE INDEX intake_log_dmarc_failure ON intake_log (dmarc_failure);

-- +goose Down
DELETE FROM intake_log WHERE kind <> 'tlsrpt';
ALTER TABLE intake_log DROP CONSTRAINT intake_log_outcome_check;
ALTER TABLE intake_log ADD CONSTRAINT intake_log_outcome_check CHECK (outcome IN ('stored', 'duplicate', 'invalid'));
ALTER TABLE intake_log DROP COLUMN dmarc_failure;
ALTER TABLE intake_log DROP COLUMN dmarc_report;
ALTER TABLE intake_log DROP COLUMN kind;
DROP TABLE dmarc_failures;
DROP TABLE dmarc_daily;
DROP TABLE dmarc_reports;
