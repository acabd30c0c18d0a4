package bimi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
)

// TXTResolver looks up TXT records; *net.Resolver implements it. It must
// be safe for concurrent use. A name that does not exist (NXDOMAIN or no
// TXT record) is reported as an error for which dnsname.IsNotFound is
// true, as *net.Resolver does.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Found is the outcome of Lookup: where the assertion record was found.
type Found struct {
	Name     string  // the DNS name the record was found at, e.g. default._bimi.example.com
	TXT      string  // the record as published
	Record   *Record // nil when the record does not parse (Lookup's error says why)
	Fallback bool    // found at the organizational domain, not the author domain (§7.2 step 5)
}

// Lookup discovers the assertion record for domain, as draft §7.2 says:
// query <selector>._bimi.<domain>, keep only the records whose first tag
// is v=BIMI1, and when none is left query the same selector at the
// organizational domain (found with the public suffix list, as DMARC does
// in RFC 7489 §3.2). selector "" means "default" (§4.3).
//
// Errors: ErrNoRecord when neither name has a BIMI record (the message
// names discarded near-misses such as "v=bimi1; ..." and wraps their parse
// error); ErrMultipleRecords when a name has several (§7.2 step 7);
// ErrLookup when a query failed (no fallback then: a failed lookup is not
// an absent record); ErrBadName for an invalid selector or domain. When
// the one record found does not parse, Lookup returns the Found (with
// Record nil) and the *TagError.
func Lookup(ctx context.Context, r TXTResolver, selector, domain string) (*Found, error) {
	if selector == "" {
		selector = "default"
	}
	selector = strings.ToLower(strings.TrimSuffix(selector, "."))
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	// Selectors and domains are owner names (dnsname.Owner): underscores
	// are allowed, as in DKIM selectors.
	if err := dnsname.Check(selector, dnsname.Owner); err != nil {
		return nil, fmt.Errorf("%w: selector: %w", ErrBadName, err)
	}
	if err := dnsname.Check(domain, dnsname.Owner); err != nil {
		return nil, fmt.Errorf("%w: domain: %w", ErrBadName, err)
	}
	names := []string{selector + "._bimi." + domain}
	if org := dnsname.OrgDomain(domain); org != domain {
		// §7.2 step 5: fall back to the organizational domain.
		names = append(names, selector+"._bimi."+org)
	}
	var discarded []error
	for i, name := range names {
		txts, err := r.LookupTXT(ctx, name)
		if err != nil {
			if !dnsname.IsNotFound(err) {
				return nil, fmt.Errorf("%w: %s: %w", ErrLookup, name, err)
			}
		}
		// §7.2 steps 4 and 6: records that do not start with v=BIMI1
		// MUST be discarded.
		var kept []string
		for _, txt := range txts {
			if startsBIMI1(txt) {
				kept = append(kept, txt)
			} else if looksLikeBIMI(txt) {
				_, perr := ParseRecord(txt)
				discarded = append(discarded, fmt.Errorf("%s: %q: %w", name, clip(txt), perr))
			}
		}
		switch {
		case len(kept) > 1:
			// §7.2 step 7: several records end discovery.
			return nil, fmt.Errorf("%w: %d records at %s", ErrMultipleRecords, len(kept), name)
		case len(kept) == 1:
			f := &Found{Name: name, TXT: kept[0], Fallback: i > 0}
			rec, err := ParseRecord(kept[0])
			if err != nil {
				return f, err
			}
			f.Record = rec
			return f, nil
		}
	}
	err := fmt.Errorf("%w at %s", ErrNoRecord, strings.Join(names, " or "))
	if len(discarded) > 0 {
		return nil, fmt.Errorf("%w; discarded: %w", err, errors.Join(discarded...))
	}
	return nil, err
}

// startsBIMI1 reports whether txt's first tag is v=BIMI1 (bimi-version =
// "v" *WSP "=" *WSP "BIMI1", followed by the end or a separator).
func startsBIMI1(txt string) bool {
	s := strings.TrimLeft(txt, " \t")
	if !strings.HasPrefix(s, "v") {
		return false
	}
	s = strings.TrimLeft(s[1:], " \t")
	if !strings.HasPrefix(s, "=") {
		return false
	}
	s = strings.TrimLeft(s[1:], " \t")
	if !strings.HasPrefix(s, "BIMI1") {
		return false
	}
	s = strings.TrimLeft(s[len("BIMI1"):], " \t")
	return s == "" || s[0] == ';'
}

// looksLikeBIMI reports whether txt was probably meant as a BIMI record,
// to explain why it was discarded.
func looksLikeBIMI(txt string) bool {
	s := strings.ToLower(strings.TrimLeft(txt, " \t"))
	return strings.HasPrefix(s, "v=bimi") || strings.Contains(s, "l=https:")
}
