package dmarc

import (
	"context"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
)

// maxTreeWalk is the most names a DMARCbis tree walk queries.
const maxTreeWalk = 8

// TreeWalkNames returns the names a DMARCbis DNS Tree Walk for domain
// queries, in order: _dmarc.<domain>, then its ancestors, skipping to
// seven labels when it has more than eight ("DNS Tree Walk" steps 3-4),
// at most eight names.
func TreeWalkNames(domain string) []string {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	labels := strings.Split(domain, ".")
	names := []string{"_dmarc." + domain}
	start := 1
	if len(labels) > maxTreeWalk {
		start = len(labels) - (maxTreeWalk - 1)
	}
	for i := start; i < len(labels); i++ {
		names = append(names, "_dmarc."+strings.Join(labels[i:], "."))
	}
	return names
}

// TreeWalk discovers the DMARC policy record and organizational domain
// of domain the DMARCbis way, by the DNS Tree Walk instead of the public
// suffix list. All names are queried in parallel.
//
// A name with more than one DMARC record counts as having none (they are
// discarded; LookupResult.Multiple lists them). The walk up from domain
// stops at the first record with psd=y or psd=n. The organizational
// domain is, among the names with a record, from longest to shortest:
// the first with psd=n; or the name one label below the first record
// with psd=y (other than at domain); or else the shortest; or domain when
// none. The policy record is domain's own, else the organizational
// domain's, else the public suffix domain's (psd=y).
//
// Errors: ErrNoRecord when no policy record applies; ErrLookup for a DNS
// failure other than NXDOMAIN/NODATA at any name (a walk with a hole
// could choose the wrong organizational domain).
func TreeWalk(ctx context.Context, r Resolver, domain string) (*LookupResult, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	res := &LookupResult{
		Domain:     domain,
		OrgDomain:  domain,
		Seen:       map[string][]string{},
		NearMisses: map[string][]string{},
		Multiple:   map[string][]string{},
	}
	names := TreeWalkNames(domain)
	answers := queryAll(ctx, r, names)
	type found struct {
		name, domain, txt string
		rec               *Record
	}
	var walk []found // records in walk order, up to the stop
	for i, name := range names {
		a := answers[i]
		if a.err != nil && !dnsname.IsNotFound(a.err) {
			return res, fmt.Errorf("%w: TXT %s: %w", ErrLookup, name, a.err)
		}
		recs := res.sort(name, a.txt)
		if len(recs) > 1 {
			res.Multiple[name] = recs
			continue
		}
		if len(recs) == 0 {
			continue
		}
		rec, _, _ := ParseRecord(recs[0])
		walk = append(walk, found{name, strings.TrimPrefix(name, "_dmarc."), recs[0], rec})
		if rec != nil && (rec.PSD == "y" || rec.PSD == "n") {
			break // steps 2 and 6: psd=y or psd=n stops the walk
		}
	}
	var psd *found
	org := -1
	for i := range walk {
		f := &walk[i]
		if f.rec == nil {
			continue
		}
		if f.rec.PSD == "n" {
			org = i
			break
		}
		if f.rec.PSD == "y" && f.domain != domain {
			psd = f
			// One label below the PSD, on the way from domain.
			labels := strings.Split(domain, ".")
			n := len(strings.Split(f.domain, ".")) + 1
			res.OrgDomain = strings.Join(labels[len(labels)-n:], ".")
			break
		}
	}
	switch {
	case org >= 0:
		res.OrgDomain = walk[org].domain
	case psd == nil && len(walk) > 0:
		res.OrgDomain = walk[len(walk)-1].domain
	}
	// Policy discovery: the author domain, its organizational domain,
	// its public suffix domain.
	pick := -1
	for i, f := range walk {
		if f.domain == domain {
			pick = i
			break
		}
	}
	if pick < 0 {
		for i, f := range walk {
			if f.domain == res.OrgDomain {
				pick = i
			}
		}
	}
	if pick < 0 && psd != nil {
		for i := range walk {
			if &walk[i] == psd {
				pick = i
			}
		}
	}
	if pick < 0 {
		return res, fmt.Errorf("%w at %s or its parents", ErrNoRecord, names[0])
	}
	f := walk[pick]
	res.FoundAt, res.PolicyDomain, res.TXT = f.name, f.domain, f.txt
	res.AtOrgDomain = f.domain != domain
	res.Records = []string{f.txt}
	res.Record, res.Warnings, res.ParseErr = ParseRecord(f.txt)
	return res, nil
}
