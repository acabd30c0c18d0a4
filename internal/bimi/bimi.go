// Package bimi checks Brand Indicators for Message Identification, as
// described by draft-brand-indicators-for-message-identification-04 ("the
// draft" below; the project keeps it as specs/draft-bimi-04.txt):
// the assertion record at <selector>._bimi.<domain> (§4.2), its discovery
// with the organizational-domain fallback (§7.2), the fetch of the
// indicator and of the evidence document over HTTPS (§7.5), and the basic
// rules of the SVG Tiny Portable/Secure profile the indicator must follow.
package bimi

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrSyntax means the record is not a valid BIMI assertion record; a
	// *TagError says where.
	ErrSyntax = errors.New("bimi: invalid assertion record")
	// ErrNoRecord means no BIMI record was found at the author domain or
	// the organizational domain.
	ErrNoRecord = errors.New("bimi: no assertion record")
	// ErrMultipleRecords means several v=BIMI1 records exist at one name;
	// §7.2 step 7 says BIMI processing MUST NOT be performed then.
	ErrMultipleRecords = errors.New("bimi: several assertion records")
	// ErrLookup means a DNS lookup failed (timeout, SERVFAIL).
	ErrLookup = errors.New("bimi: lookup failed")
	// ErrBadName means the selector or domain given to Lookup is not a
	// valid DNS name.
	ErrBadName = errors.New("bimi: invalid selector or domain")
	// ErrFetch means an HTTPS fetch failed; a *FetchError says why.
	ErrFetch = errors.New("bimi: fetch failed")
	// ErrAddressRefused means the fetch was refused because the host
	// resolved to an address the caller does not allow (AllowAddr).
	ErrAddressRefused = errors.New("bimi: address refused")
)

// TagError is a record parse error naming the tag, its value and the reason.
type TagError struct {
	Tag, Value, Reason string
}

func (e *TagError) Error() string {
	if e.Tag == "" {
		return fmt.Sprintf("bimi: invalid assertion record: %s", e.Reason)
	}
	return fmt.Sprintf("bimi: invalid assertion record: %s=%q: %s", e.Tag, e.Value, e.Reason)
}

// Unwrap returns ErrSyntax.
func (e *TagError) Unwrap() error { return ErrSyntax }

// Pair is one tag=value of a record.
type Pair struct {
	Tag, Value string
}

// Record is a parsed BIMI assertion record (draft §4.2).
type Record struct {
	Version   string // always "BIMI1"
	Logo      string // l=: the indicator's HTTPS URI, "" to decline
	Authority string // a=: the evidence document's HTTPS URI, "" when none
	Declined  bool   // l= and a= both empty: declination to publish (§4.2.1)
	// Extensions holds the tags this draft does not define, in order;
	// §4.2 says unknown tags MUST be ignored.
	Extensions []Pair
	// Notes explains tags that were ignored (for example avp= and lps=,
	// which come from later drafts).
	Notes []string
}
