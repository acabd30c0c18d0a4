package dmarc

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnstest"
)

const lookupZone = `
_dmarc.example.com.        TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"
_dmarc.example.com.        TXT "google-site-verification=x"
_dmarc.own.example.com.    TXT "v=DMARC1; p=none"
_dmarc.two.example.com.    TXT "v=DMARC1; p=none"
_dmarc.two.example.com.    TXT "v=DMARC1; p=reject"
_dmarc.bad.example.com.    TXT "v=DMARC1; p=maybe; rua=mailto:d@example.com"
_dmarc.near.example.org.   TXT "v=dmarc1; p=none"
_dmarc.shop.example.co.uk. TXT "v=DMARC1; p=none"
_dmarc.example.co.uk.      TXT "v=DMARC1; p=quarantine"
_dmarc.split.example.com.  TXT "v=DMARC1; p=none; " "rua=mailto:d@example.com"
`

func TestLookup(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, lookupZone, nil)
	r := s.Resolver()
	ctx := context.Background()
	for _, tc := range []struct {
		domain, org, foundAt string
		atOrg                bool
		policy               Policy
	}{
		{"example.com", "example.com", "_dmarc.example.com", false, PolicyReject},
		{"Example.COM.", "example.com", "_dmarc.example.com", false, PolicyReject},
		{"own.example.com", "example.com", "_dmarc.own.example.com", false, PolicyNone},
		{"mail.example.com", "example.com", "_dmarc.example.com", true, PolicyReject},
		{"a.b.c.example.com", "example.com", "_dmarc.example.com", true, PolicyReject},
		{"shop.example.co.uk", "example.co.uk", "_dmarc.shop.example.co.uk", false, PolicyNone},
		{"www.example.co.uk", "example.co.uk", "_dmarc.example.co.uk", true, PolicyQuarantine},
		{"split.example.com", "example.com", "_dmarc.split.example.com", false, PolicyNone},
	} {
		res, err := Lookup(ctx, r, tc.domain)
		if err != nil {
			t.Errorf("%s: %v", tc.domain, err)
			continue
		}
		if res.OrgDomain != tc.org || res.FoundAt != tc.foundAt || res.AtOrgDomain != tc.atOrg ||
			res.Record == nil || res.Record.Policy != tc.policy || res.PolicyDomain != strings.TrimPrefix(tc.foundAt, "_dmarc.") {
			t.Errorf("%s: %+v", tc.domain, res)
		}
	}
	res, err := Lookup(ctx, r, "example.com")
	if err != nil || len(res.Seen["_dmarc.example.com"]) != 2 || len(res.Records) != 1 {
		t.Errorf("Seen = %v, Records = %v", res.Seen, res.Records)
	}
	res, err = Lookup(ctx, r, "split.example.com")
	if err != nil || res.TXT != "v=DMARC1; p=none; rua=mailto:d@example.com" || len(res.Record.RUA) != 1 {
		t.Errorf("split: %q %v", res.TXT, err)
	}

	// RFC 7489 §6.6.3 step 5: several records, no policy and no fallback.
	res, err = Lookup(ctx, r, "two.example.com")
	if !errors.Is(err, ErrMultipleRecords) || len(res.Records) != 2 || res.Record != nil || !strings.Contains(err.Error(), "_dmarc.two.example.com") {
		t.Errorf("two: %v %+v", err, res)
	}
	// A record that does not parse is found, with ParseErr.
	res, err = Lookup(ctx, r, "bad.example.com")
	var te *TagError
	if err != nil || !errors.As(res.ParseErr, &te) || te.Tag != "p" || res.Record == nil || len(res.Record.RUA) != 1 {
		t.Errorf("bad: %v %+v", err, res)
	}
	// None anywhere; a near miss is reported.
	res, err = Lookup(ctx, r, "near.example.org")
	if !errors.Is(err, ErrNoRecord) || !slices.Equal(res.NearMisses["_dmarc.near.example.org"], []string{"v=dmarc1; p=none"}) {
		t.Errorf("near: %v %+v", err, res)
	}
	if !strings.Contains(err.Error(), "_dmarc.near.example.org or _dmarc.example.org") {
		t.Errorf("error does not name the names: %v", err)
	}
	if _, err := Lookup(ctx, r, "nothing.example.net"); !errors.Is(err, ErrNoRecord) {
		t.Errorf("nothing: %v", err)
	}
}

func deadForward(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestLookupTempError(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, `_dmarc.example.com. TXT "v=DMARC1; p=none"`, map[string]string{"broken.example.com.": deadForward(t)})
	_, err := Lookup(context.Background(), s.Resolver(), "broken.example.com")
	if !errors.Is(err, ErrLookup) || !strings.Contains(err.Error(), "_dmarc.broken.example.com") {
		t.Errorf("err = %v", err)
	}
}

func TestVerifyExternalReporting(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, `
example.com._report._dmarc.reports.example.net.   TXT "v=DMARC1"
other.example._report._dmarc.reports.example.net. TXT "not a dmarc record"
over.example._report._dmarc.reports.example.net.  TXT "v=DMARC1; rua=mailto:x@elsewhere.example"
same.example._report._dmarc.reports.example.net.  TXT "v=DMARC1; rua=mailto:y@reports.example.net"
xn--bcher-kva.example._report._dmarc.reports.example.net. TXT "v=DMARC1"
`, map[string]string{"broken.example.": deadForward(t)})
	r := s.Resolver()
	ctx := context.Background()
	uri := func(raw string) ReportURI {
		u, err := ParseReportURI(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	ext := uri("mailto:dmarc@reports.example.net")

	// Same organizational domain: no query.
	before := s.Queries()
	a, err := VerifyExternalReporting(ctx, r, "mail.example.com", uri("mailto:d@reports.example.com"))
	if err != nil || !a.Authorized || a.Needed || a.Name != "" || s.Queries() != before {
		t.Errorf("same org: %+v %v", a, err)
	}
	// RFC 7489 §7.1 example shape: authorized.
	a, err = VerifyExternalReporting(ctx, r, "example.com", ext)
	if err != nil || !a.Authorized || !a.Needed || a.Name != "example.com._report._dmarc.reports.example.net" || a.Fix != "" {
		t.Errorf("authorized: %+v %v", a, err)
	}
	// No record: refused, with the record to publish.
	a, err = VerifyExternalReporting(ctx, r, "customer.example", ext)
	if err != nil || a.Authorized || !a.Needed || a.Name != "customer.example._report._dmarc.reports.example.net" ||
		!strings.HasPrefix(a.Fix, `customer.example._report._dmarc.reports.example.net. TXT "v=DMARC1"`) || a.Reason == "" {
		t.Errorf("absent: %+v %v", a, err)
	}
	// A record not starting with v=DMARC1 does not authorize (step 5).
	a, err = VerifyExternalReporting(ctx, r, "other.example", ext)
	if err != nil || a.Authorized || len(a.Records) != 1 || len(a.Valid) != 0 {
		t.Errorf("invalid record: %+v %v", a, err)
	}
	// An override to another host: no reports at all (step 8).
	a, err = VerifyExternalReporting(ctx, r, "over.example", ext)
	if err != nil || a.Authorized || len(a.OverrideRUA) != 1 || !strings.Contains(a.Reason, "elsewhere.example") ||
		a.Fix != `over.example._report._dmarc.reports.example.net. TXT "v=DMARC1"` {
		t.Errorf("foreign override: %+v %v", a, err)
	}
	// An override on the same host is fine.
	a, err = VerifyExternalReporting(ctx, r, "same.example", ext)
	if err != nil || !a.Authorized || len(a.OverrideRUA) != 1 || a.OverrideRUA[0].Address != "y@reports.example.net" {
		t.Errorf("same-host override: %+v %v", a, err)
	}
	// Step 3: the policy domain as an A-label.
	a, err = VerifyExternalReporting(ctx, r, "bücher.example", ext)
	if err != nil || !a.Authorized || a.Name != "xn--bcher-kva.example._report._dmarc.reports.example.net" {
		t.Errorf("IDN: %+v %v", a, err)
	}
	// Temporary error (step 4).
	if _, err := VerifyExternalReporting(ctx, r, "example.com", uri("mailto:d@broken.example")); !errors.Is(err, ErrLookup) {
		t.Errorf("temp error: %v", err)
	}
	if _, err := VerifyExternalReporting(ctx, r, "example.com", ReportURI{Raw: "x"}); err == nil {
		t.Errorf("no domain: no error")
	}
}

func TestTreeWalkNames(t *testing.T) {
	t.Parallel()
	// DMARCbis "DNS Tree Walk" example.
	want := []string{
		"_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com",
		"_dmarc.g.h.i.j.mail.example.com",
		"_dmarc.h.i.j.mail.example.com",
		"_dmarc.i.j.mail.example.com",
		"_dmarc.j.mail.example.com",
		"_dmarc.mail.example.com",
		"_dmarc.example.com",
		"_dmarc.com",
	}
	if got := TreeWalkNames("a.b.c.d.e.f.g.h.i.j.mail.example.com"); !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
	if got := TreeWalkNames("a.mail.example.com"); !slices.Equal(got, []string{"_dmarc.a.mail.example.com", "_dmarc.mail.example.com", "_dmarc.example.com", "_dmarc.com"}) {
		t.Errorf("got %q", got)
	}
}

func TestTreeWalk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone, domain, org, policyDomain string
		policy                                Policy
	}{
		// DMARCbis examples of "Identifier Alignment Evaluation".
		{"shortest record", `
_dmarc.mail.example.com. TXT "v=DMARC1; p=none"
_dmarc.example.com.      TXT "v=DMARC1; p=reject"
`, "a.mail.example.com", "example.com", "example.com", PolicyReject},
		{"psd=n", `
_dmarc.mail.example.com. TXT "v=DMARC1; p=quarantine; psd=n"
_dmarc.example.com.      TXT "v=DMARC1; p=reject"
`, "a.mail.example.com", "mail.example.com", "mail.example.com", PolicyQuarantine},
		{"psd=y only", `
_dmarc.com. TXT "v=DMARC1; p=reject; psd=y"
`, "a.mail.example.com", "example.com", "com", PolicyReject},
		{"own record", `
_dmarc.a.mail.example.com. TXT "v=DMARC1; p=none"
_dmarc.example.com.        TXT "v=DMARC1; p=reject"
`, "a.mail.example.com", "example.com", "a.mail.example.com", PolicyNone},
		{"multiple discarded", `
_dmarc.a.example.com. TXT "v=DMARC1; p=none"
_dmarc.a.example.com. TXT "v=DMARC1; p=reject"
_dmarc.example.com.   TXT "v=DMARC1; p=quarantine"
`, "a.example.com", "example.com", "example.com", PolicyQuarantine},
	} {
		s := dnstest.Start(t, tc.zone, nil)
		res, err := TreeWalk(context.Background(), s.Resolver(), tc.domain)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if res.OrgDomain != tc.org || res.PolicyDomain != tc.policyDomain || res.Record == nil || res.Record.Policy != tc.policy ||
			res.AtOrgDomain != (tc.policyDomain != tc.domain) {
			t.Errorf("%s: org %q policy domain %q record %+v", tc.name, res.OrgDomain, res.PolicyDomain, res.Record)
		}
		if tc.name == "multiple discarded" && len(res.Multiple["_dmarc.a.example.com"]) != 2 {
			t.Errorf("%s: Multiple = %v", tc.name, res.Multiple)
		}
	}
	s := dnstest.Start(t, `_dmarc.other.example. TXT "v=DMARC1; p=none"`, nil)
	if _, err := TreeWalk(context.Background(), s.Resolver(), "a.example.com"); !errors.Is(err, ErrNoRecord) {
		t.Errorf("none: %v", err)
	}
}

// BenchmarkLookupLatency looks up a subdomain's policy (found at the
// organizational domain) with 50 ms per DNS answer: both names are
// queried at once, so ms/lookup should be near 50, not 100.
func BenchmarkLookupLatency(b *testing.B) {
	s := dnstest.Start(b, lookupZone, nil)
	s.SetDelay(50 * time.Millisecond)
	r := s.Resolver()
	for b.Loop() {
		if _, err := Lookup(context.Background(), r, "mail.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
