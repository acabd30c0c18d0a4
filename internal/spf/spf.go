package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
)

// Sentinel errors.
var (
	// ErrSyntax: the record does not follow the RFC 7208 §12 grammar
	// (a permerror, §4.6). Returned wrapped in *ParseError.
	ErrSyntax = errors.New("spf: syntax error")
	// ErrNoRecord: no TXT record starting with "v=spf1" at the name
	// (RFC 7208 §4.5: result none; at an include target: permerror).
	ErrNoRecord = errors.New("spf: no SPF record")
	// ErrMultipleRecords: more than one SPF record at the name
	// (RFC 7208 §4.5: permerror). The caller should tell the owner to
	// merge them into one.
	ErrMultipleRecords = errors.New("spf: multiple SPF records")
	// ErrLookup: a DNS lookup failed with something other than
	// NXDOMAIN/NODATA (RFC 7208 §2.6.6: temperror). Retrying may help.
	ErrLookup = errors.New("spf: DNS lookup failed")
)

// ParseError locates a syntax error in a record.
type ParseError struct {
	Term   string // the offending term, as written
	Pos    int    // byte offset of Term in the record
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("spf: syntax error at byte %d in term %q: %s", e.Pos, e.Term, e.Reason)
}

// Unwrap returns ErrSyntax.
func (e *ParseError) Unwrap() error { return ErrSyntax }

// Record is a parsed SPF record.
type Record struct {
	Terms []Term
}

// Term is one mechanism or modifier. For a mechanism Mechanism is set
// ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists", lower
// case); for a modifier Modifier and Value are.
type Term struct {
	Qualifier byte   // '+', '-', '~' or '?'; '+' when not written
	Mechanism string // lower case; empty for modifiers
	Domain    string // domain-spec as written (may hold macros); empty when absent
	Prefix4   int    // a/mx ip4-cidr-length; -1 when absent
	Prefix6   int    // a/mx ip6-cidr-length; -1 when absent
	IP        netip.Prefix
	Modifier  string // lower case: "redirect", "exp" or an unknown name
	Value     string // modifier value as written
	Raw       string // the term as written
}

// All returns the "all" mechanism, or nil when the record has none.
func (r *Record) All() *Term {
	for i := range r.Terms {
		if r.Terms[i].Mechanism == "all" {
			return &r.Terms[i]
		}
	}
	return nil
}

// Redirect returns the redirect= domain-spec, or "" when absent.
// RFC 7208 §6.1: a redirect is ignored when the record has an "all"
// mechanism; Redirect returns it anyway (Walk does not follow it then).
func (r *Record) Redirect() string {
	for _, t := range r.Terms {
		if t.Modifier == "redirect" {
			return t.Value
		}
	}
	return ""
}

// Exp returns the exp= domain-spec, or "" when absent.
func (r *Record) Exp() string {
	for _, t := range r.Terms {
		if t.Modifier == "exp" {
			return t.Value
		}
	}
	return ""
}

// CostsLookup reports whether the term costs one of the ten DNS lookups of
// RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect.
func (t *Term) CostsLookup() bool {
	switch t.Mechanism {
	case "include", "a", "mx", "ptr", "exists":
		return true
	}
	return t.Modifier == "redirect"
}

// Lookup returns the SPF record at domain and every TXT record found
// there (all, also on error when the TXT query succeeded).
//
// Errors: ErrNoRecord when no TXT record is an SPF record, also for
// NXDOMAIN and NODATA (RFC 7208 §4.3, §4.5: result none);
// ErrMultipleRecords when more than one is (§4.5: permerror); ErrLookup
// for any other DNS failure (§4.4: temperror). Each names the domain.
func Lookup(ctx context.Context, r Resolver, domain string) (txt string, all []string, err error) {
	domain = strings.TrimSuffix(domain, ".")
	// RFC 7208 §4.4: query for type TXT only. Fully qualified: no
	// resolv.conf search domains.
	all, err = r.LookupTXT(ctx, domain+".")
	if err != nil {
		if dnsname.IsNotFound(err) {
			return "", nil, fmt.Errorf("%w at %s", ErrNoRecord, domain)
		}
		return "", nil, fmt.Errorf("%w: TXT %s: %w", ErrLookup, domain, err)
	}
	// RFC 7208 §4.5: keep the records that start with "v=spf1".
	n := 0
	for _, t := range all {
		if IsRecord(t) {
			txt = t
			n++
		}
	}
	switch n {
	case 0:
		return "", all, fmt.Errorf("%w at %s", ErrNoRecord, domain)
	case 1:
		return txt, all, nil
	}
	return "", all, fmt.Errorf("%w: %d at %s", ErrMultipleRecords, n, domain)
}
