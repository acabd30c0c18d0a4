-- Organizations, users and what they own, and the state the domain overview
-- shows, PostgreSQL. Names, emails and hashes use COLLATE "C" so that
-- ordering is bytewise, as on SQLite; lists are JSON arrays of strings in
-- text columns. See accounts_sql.go, tenant_sql.go and overview.go for how
-- rows are written and read.

-- +goose Up

-- Organizations (tenants). A customer organization has the parent_id of its
-- MSP. Rows are never deleted (nothing offers it), so what refers to an
-- organization needs no ON DELETE. logo is empty when there is none, and
-- then logo_type is empty too.
CREATE TABLE orgs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text COLLATE "C" NOT NULL UNIQUE,
    display_name text        NOT NULL,
    parent_id    bigint      REFERENCES orgs (id),
    accent       text        NOT NULL,
    logo         bytea       NOT NULL,
    logo_type    text        NOT NULL,
    created_at   timestamptz NOT NULL,
    CHECK ((logo_type = '') = (length(logo) = 0))
);
CREATE INDEX orgs_parent ON orgs (parent_id);

-- People who sign in. email is lower-case (the store lowers it).
CREATE TABLE users (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email               text COLLATE "C" NOT NULL UNIQUE,
    password_hash       text        NOT NULL,
    operator            boolean     NOT NULL,
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL
);

-- A user's role in an organization; goes with the user.
CREATE TABLE memberships (
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     bigint      NOT NULL REFERENCES orgs (id),
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX memberships_org ON memberships (org_id);

-- Signed-in browsers. id is the SHA-256 (hex) of the cookie's secret;
-- org_id the organization the user looks at (NULL: none yet).
CREATE TABLE sessions (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     bigint      REFERENCES orgs (id),
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    ip         text        NOT NULL,
    user_agent text        NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- API tokens of an organization. hash is the SHA-256 (hex) of the secret;
-- created_by NULL when the CLI made it (or its user was deleted).
CREATE TABLE api_tokens (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     bigint      NOT NULL REFERENCES orgs (id),
    name       text        NOT NULL,
    scope      text        NOT NULL CHECK (scope IN ('read', 'write')),
    hash       text COLLATE "C" NOT NULL UNIQUE,
    prefix     text        NOT NULL,
    created_by bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL,
    last_used  timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_tokens_org ON api_tokens (org_id, created_at);

-- One-time links to join an organization. accepted_at NULL: open.
CREATE TABLE invitations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint      NOT NULL REFERENCES orgs (id),
    email       text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    hash        text COLLATE "C" NOT NULL UNIQUE,
    created_by  bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by bigint      REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX invitations_org ON invitations (org_id, created_at);

-- Stored results of `moat check`: history, kept when the domain stops being
-- hosted (no foreign key to domains). report is gzip of the JSON report,
-- report_size its length.
CREATE TABLE checks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint      NOT NULL REFERENCES orgs (id),
    domain      text COLLATE "C" NOT NULL,
    checked_at  timestamptz NOT NULL,
    score       integer     NOT NULL,
    grade       text        NOT NULL,
    report      bytea       NOT NULL,
    report_size bigint      NOT NULL
);
CREATE INDEX checks_domain ON checks (domain, checked_at);

-- One row per report submission as the ingester handled it, written in the
-- transaction that stores the report. domains copies the report's policy
-- domains (JSON).
CREATE TABLE intake_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    source      text COLLATE "C" NOT NULL,
    detail      text        NOT NULL,
    outcome     text COLLATE "C" NOT NULL CHECK (outcome IN ('stored', 'duplicate', 'invalid')),
    report      bigint      REFERENCES tlsrpt_reports (id) ON DELETE SET NULL,
    reason      text        NOT NULL,
    reporter    text        NOT NULL,
    report_name text        NOT NULL,
    domains     text        NOT NULL
);
CREATE INDEX intake_log_at ON intake_log (at);
CREATE INDEX intake_log_report ON intake_log (report);

-- The newest stored report with a policy for each domain (hosted or not),
-- kept by InsertTLSRPT, so that the overview reads one row per domain.
CREATE TABLE tlsrpt_last (
    domain      text COLLATE "C" NOT NULL PRIMARY KEY,
    received_at timestamptz NOT NULL
);
INSERT INTO tlsrpt_last (domain, received_at)
    SELECT d.domain, MAX(r.received_at) FROM tlsrpt_report_domains d JOIN tlsrpt_reports r ON r.id = d.report
    GROUP BY d.domain;

-- The policy host's certificate of each domain, as last obtained or
-- renewed; kept when the domain stops being hosted (certmagic keeps the
-- certificate too).
CREATE TABLE certificates (
    domain    text COLLATE "C" NOT NULL PRIMARY KEY,
    issued_at timestamptz NOT NULL,
    expires   timestamptz NOT NULL,
    detail    text        NOT NULL
);

-- Hosted domains: their organization, and the delegation as last verified
-- (verify is the JSON of the checks; NULL: never verified).
ALTER TABLE domains ADD COLUMN org_id bigint REFERENCES orgs (id);
ALTER TABLE domains ADD COLUMN verified_at timestamptz;
ALTER TABLE domains ADD COLUMN verify bytea;
CREATE INDEX domains_org ON domains (org_id, name);

-- What happened to a hosted domain (certificates); goes with the domain.
CREATE TABLE domain_events (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain text COLLATE "C" NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
    at     timestamptz NOT NULL,
    kind   text        NOT NULL,
    detail text        NOT NULL
);
CREATE INDEX domain_events_domain ON domain_events (domain, at);

-- Domains hosted before organizations existed go to the organization
-- "default", created only when there are such domains.
INSERT INTO orgs (name, display_name, parent_id, accent, logo, logo_type, created_at)
    SELECT 'default', 'Default', NULL, '', '', '', oldest.at
    FROM (SELECT MIN(created_at) AS at FROM domains) AS oldest
    WHERE oldest.at IS NOT NULL;
UPDATE domains SET org_id = (SELECT id FROM orgs WHERE name = 'default');
ALTER TABLE domains ALTER COLUMN org_id SET NOT NULL;

-- +goose Down
DROP TABLE domain_events;
DROP INDEX domains_org;
ALTER TABLE domains DROP COLUMN verify;
ALTER TABLE domains DROP COLUMN verified_at;
ALTER TABLE domains DROP COLUMN org_id;
DROP TABLE certificates;
DROP TABLE tlsrpt_last;
DROP TABLE intake_log;
DROP TABLE checks;
DROP TABLE invitations;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE orgs;
