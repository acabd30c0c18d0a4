package dmarc

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/moatmail/moat/internal/dnsname"
)

// LookupResult is where and what Lookup found. Lookup returns it also
// with an error, holding what was seen.
type LookupResult struct {
	// Domain is the domain asked about, lower case without final dot.
	Domain string
	// OrgDomain is its organizational domain (RFC 7489 §3.2): the public
	// suffix plus one label; Domain itself when Domain is a public suffix.
	OrgDomain string
	// PolicyDomain is the domain whose record applies (Domain or
	// OrgDomain); pass it to VerifyExternalReporting. "" when none.
	PolicyDomain string
	// FoundAt is the name of the record, e.g. "_dmarc.example.com".
	FoundAt string
	// AtOrgDomain: the record came from the organizational domain, so
	// its sp (or np) tag, not p, governs Domain when Domain is a
	// subdomain.
	AtOrgDomain bool
	// TXT is the DMARC record found; Record its parse, also when
	// ParseErr is set (every other tag applied), nil when the version
	// test failed; Warnings the parser's warnings.
	TXT      string
	Record   *Record
	Warnings []Warning
	ParseErr error
	// Records are the "v=DMARC1" records at the name that decided the
	// outcome (two or more with ErrMultipleRecords).
	Records []string
	// Seen is every TXT record of every name queried, by name.
	Seen map[string][]string
	// NearMisses are TXT records that look meant as DMARC records but
	// fail the exact version test ("v=dmarc1"), by name.
	NearMisses map[string][]string
	// Multiple lists, for TreeWalk, names whose several DMARC records
	// were discarded (DMARCbis); Lookup fails with ErrMultipleRecords
	// instead.
	Multiple map[string][]string
}

// Lookup finds the DMARC record that applies to domain (RFC 7489
// §6.6.3): the record at _dmarc.<domain>, else the one at
// _dmarc.<organizational domain>. Both names are queried at the same
// time; the second answer is used only when the first has no record.
//
// Errors: ErrMultipleRecords when the deciding name has more than one
// DMARC record (step 5: no policy; no fallback to the organizational
// domain); ErrNoRecord when neither name has one; ErrLookup (wrapped with
// the name) for a DNS failure other than NXDOMAIN/NODATA at a name that
// decides. A record that does not parse is not an error of Lookup: see
// LookupResult.ParseErr.
func Lookup(ctx context.Context, r Resolver, domain string) (*LookupResult, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	res := &LookupResult{
		Domain:     domain,
		OrgDomain:  dnsname.OrgDomain(domain),
		Seen:       map[string][]string{},
		NearMisses: map[string][]string{},
	}
	names := []string{"_dmarc." + domain}
	if res.OrgDomain != domain {
		names = append(names, "_dmarc."+res.OrgDomain)
	}
	answers := queryAll(ctx, r, names)
	for i, name := range names {
		a := answers[i]
		if a.err != nil && !dnsname.IsNotFound(a.err) {
			return res, fmt.Errorf("%w: TXT %s: %w", ErrLookup, name, a.err)
		}
		recs := res.sort(name, a.txt)
		switch len(recs) {
		case 0:
			continue // RFC 7489 §6.6.3 step 3: try the organizational domain
		case 1:
		default:
			res.Records = recs
			return res, fmt.Errorf("%w: %d at %s", ErrMultipleRecords, len(recs), name)
		}
		res.Records = recs
		res.FoundAt = name
		res.PolicyDomain = strings.TrimPrefix(name, "_dmarc.")
		res.AtOrgDomain = i == 1
		res.TXT = recs[0]
		res.Record, res.Warnings, res.ParseErr = ParseRecord(recs[0])
		return res, nil
	}
	return res, fmt.Errorf("%w at %s", ErrNoRecord, strings.Join(names, " or "))
}

// sort records the TXT records of name and returns its DMARC records.
func (res *LookupResult) sort(name string, txts []string) []string {
	var recs []string
	if len(txts) > 0 {
		res.Seen[name] = txts
	}
	for _, t := range txts {
		switch {
		case IsRecord(t):
			// RFC 7489 §6.6.3 steps 2 and 4: keep records that start
			// with v=DMARC1.
			recs = append(recs, t)
		case LooksLikeRecord(t):
			res.NearMisses[name] = append(res.NearMisses[name], t)
		}
	}
	return recs
}

type txtAnswer struct {
	txt []string
	err error
}

// queryAll queries the TXT records of names in parallel.
func queryAll(ctx context.Context, r Resolver, names []string) []txtAnswer {
	out := make([]txtAnswer, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Fully qualified: no resolv.conf search domains.
			out[i].txt, out[i].err = r.LookupTXT(ctx, n+".")
		}()
	}
	wg.Wait()
	return out
}
