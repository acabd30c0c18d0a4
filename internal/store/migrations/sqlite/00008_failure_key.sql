-- DMARC failure reports sealed to an organization's key (dmarc_seal.go), SQLite.

-- +goose Up

-- The age X25519 recipient ("age1...") to which the failure reports of the
-- organization's domains are encrypted before they are stored; '' for none.
ALTER TABLE orgs ADD COLUMN failure_key TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE orgs DROP COLUMN failure_key;
