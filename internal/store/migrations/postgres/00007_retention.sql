-- Retention (retention.go), PostgreSQL.

-- +goose Up

-- When retention cleared the raw bytes of a report (raw is then empty and
-- raw_size still says how many bytes were received); NULL while they are
-- kept.
ALTER TABLE tlsrpt_reports ADD COLUMN raw_pruned_at timestamptz;
-- The reports whose raw bytes are kept, by period: what retention.raw walks.
CREATE INDEX tlsrpt_reports_raw_kept ON tlsrpt_reports (end_time, id) WHERE raw_pruned_at IS NULL;

-- +goose Down
DROP INDEX tlsrpt_reports_raw_kept;
ALTER TABLE tlsrpt_reports DROP COLUMN raw_pruned_at;
