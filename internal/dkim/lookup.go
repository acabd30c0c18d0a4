package dkim

import (
	"context"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
)

// TXTResolver looks up TXT records; *net.Resolver implements it. It must be
// safe for concurrent use. A name that does not exist is reported as an
// error for which dnsname.IsNotFound is true, as *net.Resolver does.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Lookup returns the TXT record at <selector>._domainkey.<domain>
// (RFC 6376 §3.6.2.1), its strings joined by the resolver. It returns
// ErrNoKey when there is none, ErrMultipleRecords when there are several
// (RFC 6376 §3.6.2.2 lets verifiers pick any), and ErrLookup wrapping the
// resolver's error when the lookup failed.
func Lookup(ctx context.Context, r TXTResolver, selector, domain string) (txt string, err error) {
	selector = strings.TrimSuffix(strings.ToLower(selector), ".")
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	// RFC 6376 §3.1: a selector is one or more labels; both are owner
	// names (dnsname.Owner, underscores allowed).
	if err := dnsname.Check(selector, dnsname.Owner); err != nil {
		return "", fmt.Errorf("%w: selector: %w", ErrLookup, err)
	}
	if err := dnsname.Check(domain, dnsname.Owner); err != nil {
		return "", fmt.Errorf("%w: domain: %w", ErrLookup, err)
	}
	name := selector + "._domainkey." + domain
	txts, err := r.LookupTXT(ctx, name)
	if err != nil {
		if dnsname.IsNotFound(err) {
			return "", fmt.Errorf("%w at %s", ErrNoKey, name)
		}
		return "", fmt.Errorf("%w: %s: %w", ErrLookup, name, err)
	}
	switch len(txts) {
	case 0:
		return "", fmt.Errorf("%w at %s", ErrNoKey, name)
	case 1:
		return txts[0], nil
	default:
		return "", fmt.Errorf("%w: %d records at %s", ErrMultipleRecords, len(txts), name)
	}
}

// CommonSelectors returns a fresh slice of selectors that large mail
// providers and common software publish, to probe when the user names
// none. A selector is a free label, so no list is complete: a domain may
// sign with keys none of these find.
func CommonSelectors() []string {
	return []string{
		"default",    // cPanel, Plesk and many hosting control panels
		"selector1",  // Microsoft 365 (CNAME to the tenant's key)
		"selector2",  // Microsoft 365, the key rotated in
		"google",     // Google Workspace's default prefix
		"k1",         // Mailchimp / Mandrill
		"s1",         // SendGrid (Twilio) domain authentication
		"s2",         // SendGrid, second key
		"dkim",       // rspamd's default selector
		"mail",       // common in OpenDKIM set-up guides
		"smtp",       // Mailgun's default for older domains
		"fm1",        // Fastmail custom domains
		"protonmail", // Proton Mail custom domains
		"sig1",       // iCloud+ custom email domains
		"zmail",      // Zoho Mail
	}
}
