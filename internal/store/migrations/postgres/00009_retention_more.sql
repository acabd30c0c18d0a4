-- More of what retention prunes (retention.go): the newest report of each
-- domain and stored checks at retention.reports; expired sign-in sessions
-- and invitations never accepted, once expired. PostgreSQL.

-- +goose Up
CREATE INDEX tlsrpt_last_received ON tlsrpt_last (received_at);
CREATE INDEX checks_checked ON checks (checked_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX invitations_open_expires ON invitations (expires_at) WHERE accepted_at IS NULL;

-- +goose Down
DROP INDEX invitations_open_expires;
DROP INDEX sessions_expires;
DROP INDEX checks_checked;
DROP INDEX tlsrpt_last_received;
