package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/moatmail/moat/internal/dmarc"
)

// dmarcData is what the DMARC lookup and the report authorization lookups
// found.
type dmarcData struct {
	res       *dmarc.LookupResult
	err       error
	lookupErr error // the lookup failed (not "no record")
	auths     map[string]*authData
}

type authData struct {
	auth *dmarc.Authorization
	err  error
}

func (r *run) gatherDMARC(ctx context.Context) {
	done := r.timed("dmarc", "")
	r.dmarc.res, r.dmarc.err = dmarc.Lookup(ctx, r.res, r.domain)
	done()
	if errors.Is(r.dmarc.err, dmarc.ErrLookup) {
		r.dmarc.lookupErr = r.dmarc.err
	}
	if r.dmarc.res == nil || r.dmarc.res.Record == nil {
		return
	}
	rec := r.dmarc.res.Record
	policyDomain := r.policyDomain()
	r.dmarc.auths = map[string]*authData{}
	var wg sync.WaitGroup
	for _, uri := range append(append([]dmarc.ReportURI(nil), rec.RUA...), rec.RUF...) {
		if _, ok := r.dmarc.auths[uri.Raw]; ok {
			continue
		}
		a := &authData{}
		r.dmarc.auths[uri.Raw] = a
		wg.Go(func() {
			done := r.timed("dmarc authorization "+uri.Address, "dmarc")
			a.auth, a.err = dmarc.VerifyExternalReporting(ctx, r.res, policyDomain, uri)
			if a.err != nil || a.auth.Needed {
				// Only external addresses cost a lookup worth timing.
				done()
			}
		})
	}
	wg.Wait()
}

// policyDomain is the domain whose _dmarc record applies.
func (r *run) policyDomain() string {
	if r.dmarc.res != nil && r.dmarc.res.PolicyDomain != "" {
		return r.dmarc.res.PolicyDomain
	}
	return r.domain
}

// dmarcPolicy returns the policy that applies to the checked domain and
// the tag it comes from: p at the domain itself, sp (or p) when the record
// is the organizational domain's.
func (r *run) dmarcPolicy() (dmarc.Policy, string) {
	res := r.dmarc.res
	if res == nil || res.Record == nil {
		return "", ""
	}
	rec := res.Record
	if res.AtOrgDomain && rec.SubdomainPolicy != "" {
		return rec.SubdomainPolicy, "sp"
	}
	p := rec.Policy
	if p == "" {
		p = dmarc.PolicyNone
	}
	return p, "p"
}

// dmarcEnforced reports whether DMARC is at enforcement as BIMI requires
// (draft-blank-ietf-bimi §7.1 steps 7 to 9): quarantine or reject, no
// sp=none, pct=100 with quarantine; DMARCbis t=y with quarantine counts as
// none. When not, it says why.
func (r *run) dmarcEnforced() (bool, string) {
	p, tag := r.dmarcPolicy()
	switch p {
	case "":
		return false, "the domain has no valid DMARC record"
	case dmarc.PolicyNone:
		return false, fmt.Sprintf("the DMARC policy is %s=none", tag)
	}
	rec := r.dmarc.res.Record
	switch {
	case p == dmarc.PolicyQuarantine && rec.Has("pct") && rec.Percent < 100:
		// draft-blank-ietf-bimi §7.1 step 9.
		return false, fmt.Sprintf("the DMARC policy is %s=quarantine with pct=%d", tag, rec.Percent)
	case rec.SubdomainPolicy == dmarc.PolicyNone:
		// draft-blank-ietf-bimi §7.1 step 8.
		return false, "the DMARC subdomain policy is sp=none"
	case p == dmarc.PolicyQuarantine && rec.Testing == "y":
		// DMARCbis t=y lowers quarantine to none: as p=none (step 7).
		return false, fmt.Sprintf("the DMARC policy is %s=quarantine in test mode (t=y), which receivers apply as none", tag)
	}
	return true, ""
}

func (r *run) evalDMARC() {
	d := &r.dmarc
	name := "_dmarc." + r.domain
	suggest := fmt.Sprintf("v=DMARC1; p=quarantine; rua=mailto:dmarc@%s", r.domain)
	if r.mx.null {
		suggest = "v=DMARC1; p=reject"
	}
	switch {
	case errors.Is(d.err, dmarc.ErrNoRecord) && d.res != nil && len(d.res.NearMisses) > 0:
		for at, txts := range d.res.NearMisses {
			r.add("dmarc.syntax", fmt.Sprintf("%s: %q is not a DMARC record: it must begin with exactly \"v=DMARC1\" (upper case, first tag).", at, txts[0]),
				"replace it with "+txtRecord(at, fixVersion(txts[0])), txts)
			break
		}
		return
	case errors.Is(d.err, dmarc.ErrNoRecord):
		org := ""
		if d.res != nil && d.res.OrgDomain != "" && d.res.OrgDomain != r.domain {
			org = " nor at its organizational domain " + d.res.OrgDomain
		}
		r.add("dmarc.missing", fmt.Sprintf("No \"v=DMARC1\" record at %s%s.", name, org),
			"publish "+txtRecord(name, suggest)+" (start with p=none if you are not sure every sender passes SPF or DKIM aligned, read the reports, then raise it)", nil)
		return
	case errors.Is(d.err, dmarc.ErrMultipleRecords):
		var seen []string
		if d.res != nil {
			for _, t := range d.res.Records {
				seen = append(seen, fmt.Sprintf("%q", t))
			}
		}
		r.add("dmarc.multiple", fmt.Sprintf("%v: %s.", d.err, strings.Join(seen, ", ")),
			"keep exactly one record at the name, for example "+txtRecord(name, suggest), nil)
		return
	case d.err != nil:
		r.add("dmarc.dns-error", fmt.Sprintf("DMARC lookup for %s failed: %v", r.domain, d.err), "Check that the domain's name servers answer TXT queries for "+name+".", nil)
		return
	}
	res := d.res
	at := strings.TrimSuffix(res.FoundAt, ".")
	if res.Record == nil || res.ParseErr != nil {
		r.add("dmarc.syntax", fmt.Sprintf("%s: %q is invalid: %v", at, res.TXT, res.ParseErr),
			"replace it with "+txtRecord(at, suggest), res.TXT)
		return
	}
	rec := res.Record
	if res.AtOrgDomain {
		r.add("dmarc.org-domain", fmt.Sprintf("%s has no DMARC record; the record of its organizational domain applies: %s %q.", name, at, res.TXT), "", nil)
	}
	penalized := false
	add := func(id, msg, fix string) {
		if r.c.rules[id].Penalty > 0 {
			penalized = true
		}
		r.add(id, msg, fix, res.TXT)
	}
	fixed := func(edit func(*tagList)) string {
		t := parseTagList(res.TXT)
		edit(t)
		return txtRecord(at, t.String())
	}
	policy, tag := r.dmarcPolicy()
	if policy == dmarc.PolicyNone {
		where := ""
		if res.AtOrgDomain {
			where = fmt.Sprintf(" (the policy of %s for its subdomains)", res.OrgDomain)
		}
		add("dmarc.policy-none", fmt.Sprintf("%s=none at %s%s: receivers take no action on mail that fails DMARC.", tag, at, where),
			"once the aggregate reports show your own mail passes, "+fixed(func(t *tagList) { t.set(tag, "quarantine", "p") })+" and later p=reject")
	} else {
		if !res.AtOrgDomain && rec.SubdomainPolicy == dmarc.PolicyNone {
			add("dmarc.subdomain-none", fmt.Sprintf("%s has p=%s but sp=none.", at, rec.Policy), fixed(func(t *tagList) { t.remove("sp") }))
		}
		if rec.NonexistentPolicy == dmarc.PolicyNone {
			add("dmarc.nonexistent-none", fmt.Sprintf("%s has p=%s but np=none.", at, rec.Policy), fixed(func(t *tagList) { t.set("np", "reject", "p") }))
		}
		if rec.Has("pct") && rec.Percent < 100 {
			add("dmarc.pct", fmt.Sprintf("%s has pct=%d: the policy applies to %d%% of failing mail.", at, rec.Percent, rec.Percent), fixed(func(t *tagList) { t.remove("pct") }))
		}
		if rec.Testing == "y" {
			add("dmarc.testing", fmt.Sprintf("%s has t=y: receivers apply a policy one level below %s=%s.", at, tag, policy), fixed(func(t *tagList) { t.remove("t") }))
		}
	}
	if len(rec.RUA) == 0 {
		add("dmarc.no-rua", fmt.Sprintf("%s has no rua tag.", at), fixed(func(t *tagList) { t.set("rua", "mailto:dmarc@"+r.policyDomain(), "p") }))
	}
	for _, w := range res.Warnings {
		if w.Tag == "rua" || w.Tag == "ruf" {
			add("dmarc.report-uri", fmt.Sprintf("%s: %s=: %s", at, w.Tag, w.Message), "use mailto: addresses in "+w.Tag+"= (comma-separated, with ! size suffixes only as in mailto:a@example.com!10m)")
		} else {
			add("dmarc.tag-warning", fmt.Sprintf("%s: %s=: %s", at, w.Tag, w.Message), "correct the "+w.Tag+"= tag of "+txtRecord(at, res.TXT))
		}
	}
	for _, list := range []struct {
		tag  string
		uris []dmarc.ReportURI
	}{{"rua", rec.RUA}, {"ruf", rec.RUF}} {
		for _, uri := range list.uris {
			a := d.auths[uri.Raw]
			switch {
			case a == nil:
			case a.err != nil:
				r.add("dmarc.report-unverified", fmt.Sprintf("Whether %s accepts %s reports for %s could not be checked: %v", uri.Domain, list.tag, r.policyDomain(), a.err), "", nil)
			case a.auth != nil && a.auth.Needed && !a.auth.Authorized:
				add("dmarc.report-unauthorized", fmt.Sprintf("%s=%s: %s; receivers will not send these reports.", list.tag, uri.URI, a.auth.Reason),
					"the owner of "+uri.Domain+" publishes "+authFix(a.auth))
			}
		}
	}
	if !penalized {
		var parts []string
		parts = append(parts, tag+"="+string(policy))
		if rec.SubdomainPolicy != "" && !res.AtOrgDomain {
			parts = append(parts, "sp="+string(rec.SubdomainPolicy))
		}
		if rec.NonexistentPolicy != "" {
			parts = append(parts, "np="+string(rec.NonexistentPolicy))
		}
		parts = append(parts, "adkim="+string(rec.ADKIM), "aspf="+string(rec.ASPF))
		var rua []string
		for _, u := range rec.RUA {
			rua = append(rua, u.URI)
		}
		parts = append(parts, "rua="+strings.Join(rua, ","))
		r.add("dmarc.ok", fmt.Sprintf("%s: %s.", at, strings.Join(parts, ", ")), "", res.TXT)
	}
}

// authFix is the authorization record of RFC 7489 §7.1 for a.
func authFix(a *dmarc.Authorization) string {
	if a.Fix != "" {
		return a.Fix
	}
	return txtRecord(a.Name, "v=DMARC1")
}

// fixVersion rewrites a near-miss version tag ("v=dmarc1") as v=DMARC1.
func fixVersion(txt string) string {
	t := parseTagList(txt)
	t.remove("v")
	t.tags = append([][2]string{{"v", "DMARC1"}}, t.tags...)
	return t.String()
}
