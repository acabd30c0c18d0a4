package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// Sealing DMARC failure reports: an organization that set a failure key
// (Org.FailureKey, an age X25519 recipient) gets the failure reports of
// its domains stored encrypted to it. The raw message and the parsed JSON
// (which hold the addresses, the subject and the header of the failed
// message) are each encrypted with age (https://age-encryption.org/v1) in
// the transaction that inserts the report, so that a key set before a
// commit applies to every report committed after it. The server never
// holds the identity: only the organization can decrypt (moat reports
// dmarc decrypt, or age -d).
//
// What stays in plain text is what lists and filters need and what holds
// nothing of the failed message's people: the reported domain, the
// reporter's domain, the arrival and received times, Feedback-Type,
// Auth-Failure, Delivery-Result, Source-IP (the sending server, not a
// person), Reporting-MTA, User-Agent (of the reporter's software),
// DKIM-Domain and DKIM-Selector (not DKIM-Identity, which can be an
// address), SPF-DNS, Identity-Alignment, Incidents, the parse warnings,
// the size of the message and its SHA-256 (to recognise a copy).

// ErrSealed is returned when a sealed failure report's plain text is asked
// for: only the holder of the organization's age identity can read it.
var ErrSealed = errors.New("store: the failure report is encrypted to the organization's key")

// SealPrefix begins every age-encrypted value (the age v1 header).
const SealPrefix = "age-encryption.org/v1\n"

// CheckFailureKey reports whether recipient is "" or one age X25519
// recipient ("age1..."), with ErrInvalidArg saying why not.
func CheckFailureKey(recipient string) error {
	if recipient == "" {
		return nil
	}
	if strings.TrimSpace(recipient) != recipient || !strings.HasPrefix(recipient, "age1") {
		return fmt.Errorf("%w: failure report key %q: want an age X25519 recipient (age1 and 58 characters)", ErrInvalidArg, clipKey(recipient))
	}
	if _, err := age.ParseX25519Recipient(recipient); err != nil {
		return fmt.Errorf("%w: failure report key %q: %w", ErrInvalidArg, clipKey(recipient), err)
	}
	return nil
}

func clipKey(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// SetFailureKey implements Tenant.
func (t *tenant) SetFailureKey(ctx context.Context, orgID int64, recipient string) error {
	if err := CheckFailureKey(recipient); err != nil {
		return err
	}
	var q sqlq
	text := sqlText(`UPDATE orgs SET failure_key = `, q.arg(recipient), ` WHERE id = `, q.arg(orgID), t.andIn(&q, "id"))
	res, err := t.s.w.ExecContext(ctx, text, q.args...)
	return oneRow(res, err, fmt.Sprintf("failure report key of organization %d", orgID))
}

// failureKey returns the failure key of the organization hosting domain,
// in tx: "" when none is set or nobody hosts the domain.
func failureKey(ctx context.Context, tx *sql.Tx, domain string) (string, error) {
	if domain == "" {
		return "", nil
	}
	var key string
	err := tx.QueryRowContext(ctx, `SELECT o.failure_key FROM domains d JOIN orgs o ON o.id = d.org_id WHERE d.name = $1`,
		domain).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return key, err
}

// seal encrypts plain to the age X25519 recipient.
func seal(recipient string, plain []byte) ([]byte, error) {
	r, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		return nil, fmt.Errorf("recipient %q: %w", clipKey(recipient), err)
	}
	var b bytes.Buffer
	w, err := age.Encrypt(&b, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sealFailure returns what to store of row's message and parsed JSON:
// age ciphertext of their plain text, and the recipient, when the
// organization hosting its domain has a key; else their gzip and "".
func sealFailure(ctx context.Context, tx *sql.Tx, row *failureRow) (raw, parsed []byte, sealed string, err error) {
	key, err := failureKey(ctx, tx, row.r.Domain)
	if err != nil {
		return nil, nil, "", fmt.Errorf("look up the failure report key of %q: %w", row.r.Domain, err)
	}
	if key == "" {
		return row.raw, row.parsed, "", nil
	}
	if raw, err = seal(key, row.r.Raw); err != nil {
		return nil, nil, "", fmt.Errorf("seal the message: %w", err)
	}
	if parsed, err = seal(key, row.r.Parsed); err != nil {
		return nil, nil, "", fmt.Errorf("seal the parsed report: %w", err)
	}
	return raw, parsed, key, nil
}

// Unseal decrypts a sealed value (DMARCFailure.Raw or Parsed of a sealed
// report) with the identities, for the holder of the organization's key.
func Unseal(ciphertext []byte, ids ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ciphertext), ids...)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
