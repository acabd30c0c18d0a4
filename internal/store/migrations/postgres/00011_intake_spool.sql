-- The intake spool (spool.go), PostgreSQL.

-- +goose Up

-- Claims take the oldest free rows in id order: the rows before them are
-- only those claimed (a few batches) or failed (rare), so no index beyond
-- the primary key is kept up at every insert.
-- Report mail acknowledged once kept here (intake.smtp_spool), until the
-- reports in it are committed; then the row is deleted. A row whose
-- processing failed for good keeps its message and says why.
CREATE TABLE intake_spool (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   timestamptz NOT NULL,
    source        text        NOT NULL,
    detail        text        NOT NULL,
    dkim          text        NOT NULL,
    hint          text        NOT NULL,
    data          bytea       NOT NULL,
    -- Until when an instance's processor holds the row; the epoch when
    -- free. A failed row holds a time centuries ahead: it is never claimed
    -- again.
    claimed_until timestamptz NOT NULL DEFAULT 'epoch',
    attempts      integer     NOT NULL DEFAULT 0,
    error         text        NOT NULL DEFAULT '',
    failed        boolean     NOT NULL DEFAULT false
);
-- The failed rows, by age, for retention (retention.raw); a partial index
-- costs the other rows nothing.
CREATE INDEX intake_spool_failed ON intake_spool (received_at) WHERE failed;

-- +goose Down
DROP TABLE intake_spool;
