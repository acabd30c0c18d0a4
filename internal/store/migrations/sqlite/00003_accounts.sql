-- Organizations, users and what they own, and the state the domain overview
-- shows, SQLite. Times are integer Unix nanoseconds, UTC, NULL where a time
-- may be absent; lists are JSON arrays of strings. See accounts_sql.go,
-- tenant_sql.go and overview.go for how rows are written and read.
--
-- No Down: SQLite cannot drop domains.org_id, a column with a foreign key.

-- +goose Up

-- Organizations (tenants). A customer organization has the parent_id of its
-- MSP. Rows are never deleted (nothing offers it), so what refers to an
-- organization needs no ON DELETE. logo is empty when there is none, and
-- then logo_type is empty too.
CREATE TABLE orgs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    display_name TEXT    NOT NULL,
    parent_id    INTEGER REFERENCES orgs (id),
    accent       TEXT    NOT NULL,
    logo         BLOB    NOT NULL,
    logo_type    TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    CHECK ((logo_type = '') = (length(logo) = 0))
) STRICT;
CREATE INDEX orgs_parent ON orgs (parent_id);

-- People who sign in. email is lower-case (the store lowers it).
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    email               TEXT    NOT NULL UNIQUE,
    password_hash       TEXT    NOT NULL,
    operator            INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
) STRICT;

-- A user's role in an organization; goes with the user.
CREATE TABLE memberships (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     INTEGER NOT NULL REFERENCES orgs (id),
    role       TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, org_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_org ON memberships (org_id);

-- Signed-in browsers. id is the SHA-256 (hex) of the cookie's secret;
-- org_id the organization the user looks at (NULL: none yet).
CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     INTEGER REFERENCES orgs (id),
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ip         TEXT    NOT NULL,
    user_agent TEXT    NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

-- API tokens of an organization. hash is the SHA-256 (hex) of the secret;
-- created_by NULL when the CLI made it (or its user was deleted).
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     INTEGER NOT NULL REFERENCES orgs (id),
    name       TEXT    NOT NULL,
    scope      TEXT    NOT NULL CHECK (scope IN ('read', 'write')),
    hash       TEXT    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    last_used  INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX api_tokens_org ON api_tokens (org_id, created_at);

-- One-time links to join an organization. accepted_at NULL: open.
CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs (id),
    email       TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    hash        TEXT    NOT NULL UNIQUE,
    created_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER,
    accepted_by INTEGER REFERENCES users (id) ON DELETE SET NULL
) STRICT;
CREATE INDEX invitations_org ON invitations (org_id, created_at);

-- Stored results of `moat check`: history, kept when the domain stops being
-- hosted (no foreign key to domains). report is gzip of the JSON report,
-- report_size its length.
CREATE TABLE checks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs (id),
    domain      TEXT    NOT NULL,
    checked_at  INTEGER NOT NULL,
    score       INTEGER NOT NULL,
    grade       TEXT    NOT NULL,
    report      BLOB    NOT NULL,
    report_size INTEGER NOT NULL
) STRICT;
CREATE INDEX checks_domain ON checks (domain, checked_at);

-- One row per report submission as the ingester handled it, written in the
-- transaction that stores the report. domains copies the report's policy
-- domains (JSON).
CREATE TABLE intake_log (
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
CREATE INDEX intake_log_at ON intake_log (at);
CREATE INDEX intake_log_report ON intake_log (report);

-- The newest stored report with a policy for each domain (hosted or not),
-- kept by InsertTLSRPT, so that the overview reads one row per domain.
CREATE TABLE tlsrpt_last (
    domain      TEXT    NOT NULL PRIMARY KEY,
    received_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO tlsrpt_last (domain, received_at)
    SELECT d.domain, MAX(r.received_at) FROM tlsrpt_report_domains d JOIN tlsrpt_reports r ON r.id = d.report
    GROUP BY d.domain;

-- The policy host's certificate of each domain, as last obtained or
-- renewed; kept when the domain stops being hosted (certmagic keeps the
-- certificate too).
CREATE TABLE certificates (
    domain    TEXT    NOT NULL PRIMARY KEY,
    issued_at INTEGER NOT NULL,
    expires   INTEGER NOT NULL,
    detail    TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

-- Hosted domains: their organization, and the delegation as last verified
-- (verify is the JSON of the checks; NULL: never verified).
ALTER TABLE domains ADD COLUMN org_id INTEGER REFERENCES orgs (id);
ALTER TABLE domains ADD COLUMN verified_at INTEGER;
ALTER TABLE domains ADD COLUMN verify BLOB;
CREATE INDEX domains_org ON domains (org_id, name);

-- What happened to a hosted domain (certificates); goes with the domain.
CREATE TABLE domain_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT    NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
    at     INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    detail TEXT    NOT NULL
) STRICT;
CREATE INDEX domain_events_domain ON domain_events (domain, at);

-- Domains hosted before organizations existed go to the organization
-- "default", created only when there are such domains.
INSERT INTO orgs (name, display_name, parent_id, accent, logo, logo_type, created_at)
    SELECT 'default', 'Default', NULL, '', x'', '', oldest.at
    FROM (SELECT MIN(created_at) AS at FROM domains) AS oldest
    WHERE oldest.at IS NOT NULL;
UPDATE domains SET org_id = (SELECT id FROM orgs WHERE name = 'default');

-- SQLite cannot add a NOT NULL column with a foreign key to a table: these
-- triggers hold domains.org_id to NOT NULL instead.
-- +goose StatementBegin
CREATE TRIGGER domains_org_id_insert BEFORE INSERT ON domains
WHEN NEW.org_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'NOT NULL constraint failed: domains.org_id');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER domains_org_id_update BEFORE UPDATE OF org_id ON domains
WHEN NEW.org_id IS NULL
BEGIN
    SELECT RAISE(ABORT, 'NOT NULL constraint failed: domains.org_id');
END;
-- +goose StatementEnd
