// Package dkim reads DKIM public-key records for the domain checker:
// the tag-list syntax and key record tags of RFC 6376 §3.2 and §3.6.1,
// the hash algorithm rules of RFC 8301 (SHA-1 MUST NOT be used, RSA keys
// of at least 1024 bits) and the Ed25519 key type of RFC 8463.
//
// It does not verify signatures (that is github.com/emersion/go-msgauth's
// job); it tells what a published key is: its type and size, whether it
// is revoked (empty p=) or in testing mode (t=y), and why a record is
// malformed.
package dkim

import (
	"crypto"
	"errors"
	"fmt"
)

// Sentinel errors. Every parse error is a *TagError wrapping ErrSyntax.
var (
	// ErrSyntax means the record is not a valid DKIM key record; the
	// *TagError says which tag and why.
	ErrSyntax = errors.New("dkim: invalid key record")
	// ErrNoKey means no TXT record exists at <selector>._domainkey.<domain>:
	// the selector is not in use.
	ErrNoKey = errors.New("dkim: no key record")
	// ErrMultipleRecords means several TXT records exist at the key name;
	// verifiers may pick any of them, so the publisher should keep one.
	ErrMultipleRecords = errors.New("dkim: several TXT records for one selector")
	// ErrLookup means the DNS lookup itself failed (timeout, SERVFAIL).
	ErrLookup = errors.New("dkim: lookup failed")
)

// TagError is a parse error naming the tag, its value and the reason.
type TagError struct {
	Tag    string // tag name, "" for a tag-list syntax error
	Value  string // the offending value (truncated to 64 bytes)
	Reason string
}

func (e *TagError) Error() string {
	if e.Tag == "" {
		return fmt.Sprintf("dkim: invalid key record: %s", e.Reason)
	}
	return fmt.Sprintf("dkim: invalid key record: %s=%q: %s", e.Tag, e.Value, e.Reason)
}

// Unwrap returns ErrSyntax.
func (e *TagError) Unwrap() error { return ErrSyntax }

// Key is a parsed DKIM key record (RFC 6376 §3.6.1).
type Key struct {
	Version  string   // "DKIM1" or "" when v= is absent
	KeyType  string   // "rsa" (the default) or "ed25519"
	Revoked  bool     // p= is empty: the key was revoked (RFC 6376 §3.6.1)
	Bits     int      // RSA modulus size in bits; 256 for Ed25519; 0 when revoked
	Testing  bool     // t=y: the domain is testing DKIM
	Strict   bool     // t=s: the i= domain must equal d= exactly
	Hashes   []string // h= values, lower-case; nil when absent (all allowed)
	Services []string // s= values, lower-case; nil when absent ("*")
	Notes    string   // n=, as published
	// Public is *rsa.PublicKey or ed25519.PublicKey; nil when revoked.
	Public crypto.PublicKey
	// Warnings lists problems that do not make the record invalid, such
	// as h=sha1 only (RFC 8301 §3.1) or unknown flags.
	Warnings []string
}
