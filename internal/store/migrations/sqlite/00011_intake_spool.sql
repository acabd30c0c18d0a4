-- The intake spool (spool.go), SQLite. Times are integer Unix nanoseconds,
-- UTC.

-- +goose Up

-- Claims take the oldest free rows in id order: the rows before them are
-- only those claimed (a few batches) or failed (rare), so no index beyond
-- the primary key is kept up at every insert.
-- Report mail acknowledged once kept here (intake.smtp_spool), until the
-- reports in it are committed; then the row is deleted. A row whose
-- processing failed for good keeps its message and says why.
CREATE TABLE intake_spool (
    id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids name messages in logs and answers
    received_at   INTEGER NOT NULL,
    source        TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    dkim          TEXT    NOT NULL,
    hint          TEXT    NOT NULL,
    data          BLOB    NOT NULL,
    -- Until when an instance's processor holds the row; 0 (the epoch) when
    -- free. A failed row holds a time centuries ahead: it is never claimed
    -- again.
    claimed_until INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT    NOT NULL DEFAULT '',
    failed        INTEGER NOT NULL DEFAULT 0
) STRICT;
-- The failed rows, by age, for retention (retention.raw); a partial index
-- costs the other rows nothing.
CREATE INDEX intake_spool_failed ON intake_spool (received_at) WHERE failed;

-- +goose Down
DROP TABLE intake_spool;
