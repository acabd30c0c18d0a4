package dmarc

import (
	"context"
	"fmt"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
)

// Authorization is the outcome of an RFC 7489 §7.1 external reporting
// check for one rua or ruf URI.
type Authorization struct {
	// Authorized: reports may go to the URI.
	Authorized bool
	// Needed: the URI's domain is outside the policy domain's
	// organizational domain, so the check was made.
	Needed bool
	// Name is the name queried ("example.com._report._dmarc.reports.example.net"),
	// "" when the check was not needed.
	Name string
	// Records are the TXT records found at Name; Valid those starting
	// with v=DMARC1, which authorize.
	Records, Valid []string
	// Override holds the rua and ruf URIs of the authorizing record,
	// which replace the policy's (§7.1 step 8).
	OverrideRUA, OverrideRUF []ReportURI
	// Reason explains a refusal.
	Reason string
	// Fix is the TXT record the report domain's owner must publish to
	// authorize the reports, in zone-file form; "" when authorized.
	Fix string
}

// VerifyExternalReporting checks whether the owner of uri's domain agrees
// to receive reports for domain (RFC 7489 §7.1). domain is the domain the
// policy was retrieved from (LookupResult.PolicyDomain). When uri's
// domain has the same organizational domain, no query is needed and the
// URI is authorized.
//
// Otherwise the TXT records at <domain>._report._dmarc.<uri domain> are
// read; any that starts with v=DMARC1 authorizes, unless it overrides rua
// or ruf with a URI whose host differs from uri's, in which case no
// report may be sent to either (step 8 and the paragraph after).
//
// Errors: ErrLookup for a DNS failure other than NXDOMAIN/NODATA (§7.1
// step 4: a receiver may retry later); a plain error when uri has no
// domain. A missing record is not an error: Authorized is false.
func VerifyExternalReporting(ctx context.Context, r Resolver, domain string, uri ReportURI) (*Authorization, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	dest := strings.ToLower(strings.TrimSuffix(uri.Domain, "."))
	if dest == "" {
		return nil, fmt.Errorf("dmarc: report URI %q has no domain to verify", uri.Raw)
	}
	a := &Authorization{}
	// §7.1: the check applies when the organizational domains differ.
	if dnsname.OrgDomain(domain) == dnsname.OrgDomain(dest) {
		a.Authorized = true
		return a, nil
	}
	a.Needed = true
	// §7.1 step 3: the policy domain as an A-label.
	alabel, err := dnsname.Parse(domain, dnsname.Owner)
	if err != nil {
		alabel = domain
	}
	a.Name = alabel + "._report._dmarc." + dest
	a.Fix = fmt.Sprintf("%s. TXT \"v=DMARC1\"", a.Name)
	txts, err := r.LookupTXT(ctx, a.Name+".")
	if err != nil && !dnsname.IsNotFound(err) {
		return a, fmt.Errorf("%w: TXT %s: %w", ErrLookup, a.Name, err)
	}
	a.Records = txts
	for _, t := range txts {
		// §7.1 step 5: v=DMARC1 MUST appear first; discard the others.
		if IsRecord(t) {
			a.Valid = append(a.Valid, t)
		}
	}
	if len(a.Valid) == 0 {
		// §7.1 step 6.
		a.Reason = fmt.Sprintf("no record starting with v=DMARC1 at %s: %s has not agreed to receive reports for %s", a.Name, dest, domain)
		a.Fix += fmt.Sprintf(" (or, to accept reports for any domain, *._report._dmarc.%s. TXT \"v=DMARC1\")", dest)
		return a, nil
	}
	a.Authorized = true
	// §7.1 step 8: rua/ruf in the authorizing record replace the
	// policy's, but MUST use the same destination host.
	rec, _, _ := ParseRecord(a.Valid[0])
	if rec != nil {
		a.OverrideRUA, a.OverrideRUF = rec.RUA, rec.RUF
		for _, o := range append(append([]ReportURI(nil), rec.RUA...), rec.RUF...) {
			if o.Domain != dest {
				a.Authorized = false
				a.Reason = fmt.Sprintf("the authorization record at %s overrides the destination with %s, on another host than %s: no report may be sent to either (RFC 7489 §7.1)", a.Name, o.URI, dest)
				a.Fix = fmt.Sprintf("%s. TXT %q", a.Name, overrideFix(a.Valid[0]))
				return a, nil
			}
		}
	}
	a.Fix = ""
	return a, nil
}

// overrideFix suggests the authorization record without foreign
// overrides.
func overrideFix(rec string) string {
	var keep []string
	for _, spec := range strings.Split(rec, ";") {
		name, _, _ := strings.Cut(spec, "=")
		n := strings.ToLower(trimWSP(name))
		if n == "rua" || n == "ruf" || trimWSP(spec) == "" {
			continue
		}
		keep = append(keep, trimWSP(spec))
	}
	return strings.Join(keep, "; ")
}
