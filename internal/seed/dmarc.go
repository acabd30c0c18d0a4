package seed

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DMARC aggregate reports of the demo (RFC 7489 Appendix C, as the large
// receivers write them). A domain's mail comes from sources of the kinds
// the DMARC pages sort into tabs: its own servers (DKIM and SPF aligned),
// a newsletter service that signs for the domain (Mailchimp: DKIM
// aligned, SPF of the service's bounce domain), on some domains a CRM
// that signs with its own key (HubSpot, nothing aligned: the
// misconfigured source the fixes are about; both recognized by the
// senders catalogue from their domains),
// mailing lists that forward it (DKIM survives, SPF fails) and, on some
// days, spoofers. Addresses are documentation ranges (RFC 5737, RFC 3849).

// dmarcReporter is a receiver that sends DMARC aggregate reports.
type dmarcReporter struct {
	org, email string
	share      float64 // of the domain's mail it receives
}

func dmarcReporters() []dmarcReporter {
	return []dmarcReporter{
		{"google.com", "noreply-dmarc-support@google.com", 0.55},
		{"Enterprise Outlook", "dmarcreport@microsoft.com", 0.30},
		{"Yahoo", "dmarchelp@yahooinc.com", 0.15},
	}
}

// dmarcSource is a source of mail as one record of a report.
type dmarcSource struct {
	ip                  string
	share               float64 // of the domain's volume
	envelope            string  // the MAIL FROM domain
	dkimDomain, dkimSel string  // "" when unsigned
	dkim, spf           string  // results: pass, fail, none, softfail
	dkimOK, spfOK       bool    // DMARC's evaluation: aligned and passing
	forwarded           bool
}

// dmarcSources are the sources of domain i.
func dmarcSources(domain string, i int) []dmarcSource {
	own := fmt.Sprintf("203.0.113.%d", 10+i%200)
	srcs := []dmarcSource{
		{ip: own, share: 0.6, envelope: domain, dkimDomain: domain, dkimSel: "s1", dkim: "pass", spf: "pass", dkimOK: true, spfOK: true},
		{ip: fmt.Sprintf("198.51.100.%d", 20+i%50), share: 0.3, envelope: "mail42.mcsv.net", dkimDomain: domain, dkimSel: "k1",
			dkim: "pass", spf: "pass", dkimOK: true},
		{ip: fmt.Sprintf("192.0.2.%d", 30+i%40), share: 0.03, envelope: domain, dkimDomain: domain, dkimSel: "s1", dkim: "pass", spf: "fail",
			dkimOK: true, forwarded: true},
	}
	if i%2 == 0 {
		// A list that rewrites the subject: the signature breaks, and the
		// receiver lets the mail through as forwarded.
		srcs = append(srcs, dmarcSource{ip: fmt.Sprintf("192.0.2.%d", 100+i%40), share: 0.01, envelope: "lists.forum.example",
			dkimDomain: domain, dkimSel: "s1", dkim: "fail", spf: "pass", forwarded: true})
	}
	if i%3 == 0 {
		srcs = append(srcs, dmarcSource{ip: fmt.Sprintf("198.51.100.%d", 120+i%50), share: 0.07, envelope: "bounce.hubspotemail.net",
			dkimDomain: "hubspotemail.net", dkimSel: "hs1", dkim: "pass", spf: "pass"})
	}
	return srcs
}

// dmarcPolicy is the DMARC policy domain i publishes.
func dmarcPolicy(i int) (p string, pct int) {
	switch i % 3 {
	case 0:
		return "none", 100
	case 1:
		return "quarantine", 100
	}
	return "reject", 100
}

// dmarcReportsOn returns the aggregate reports about domain i for the day
// starting at date, one per reporter that received mail from it, as XML.
func dmarcReportsOn(rnd *rand.Rand, domain string, i int, volume float64, date time.Time) [][]byte {
	p, pct := dmarcPolicy(i)
	srcs := dmarcSources(domain, i)
	// Mail the domain sends: of the order of what it receives (volume:
	// the TLS sessions of a day), and at least a small office's.
	volume = 40 + 2*volume
	var out [][]byte
	for ri, r := range dmarcReporters() {
		var b strings.Builder
		records := 0
		for _, s := range srcs {
			n := int(volume * r.share * s.share * (0.7 + 0.6*rnd.Float64()))
			if n == 0 {
				continue
			}
			records++
			writeRecord(&b, s, domain, n, p)
		}
		if rnd.IntN(5) < 2 { // spoofers, on some days
			n := 1 + rnd.IntN(1+int(volume*r.share*0.05)) // a few percent of the real mail
			writeRecord(&b, dmarcSource{ip: fmt.Sprintf("2001:db8:bad:%x::%x", ri+1, 1+rnd.IntN(200)), envelope: domain, dkim: "none", spf: "fail"},
				domain, n, p)
			records++
		}
		if records == 0 {
			continue
		}
		end := date.Add(24*time.Hour - time.Second)
		head := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>%s</org_name>
    <email>%s</email>
    <report_id>%s!%s!%d</report_id>
    <date_range><begin>%d</begin><end>%d</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>%s</p><sp>%s</sp><pct>%d</pct><np>%s</np>
  </policy_published>
`, r.org, r.email, strings.ReplaceAll(strings.ToLower(r.org), " ", "-"), domain, date.Unix(), date.Unix(), end.Unix(), domain, p, p, pct, p)
		out = append(out, []byte(head+b.String()+"</feedback>\n"))
	}
	return out
}

// writeRecord writes the record of n messages from s.
func writeRecord(b *strings.Builder, s dmarcSource, domain string, n int, p string) {
	disposition := "none"
	pass := s.dkimOK || s.spfOK
	reason := ""
	switch {
	case !pass && s.forwarded:
		reason = "<reason><type>forwarded</type></reason>"
	case !pass:
		disposition = p
	}
	eval := func(ok bool) string {
		if ok {
			return "pass"
		}
		return "fail"
	}
	fmt.Fprintf(b, `  <record>
    <row>
      <source_ip>%s</source_ip>
      <count>%d</count>
      <policy_evaluated><disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf>%s</policy_evaluated>
    </row>
    <identifiers><envelope_from>%s</envelope_from><header_from>%s</header_from></identifiers>
    <auth_results>
`, s.ip, n, disposition, eval(s.dkimOK), eval(s.spfOK), reason, s.envelope, domain)
	if s.dkimDomain != "" {
		fmt.Fprintf(b, "      <dkim><domain>%s</domain><selector>%s</selector><result>%s</result></dkim>\n", s.dkimDomain, s.dkimSel, s.dkim)
	}
	fmt.Fprintf(b, "      <spf><domain>%s</domain><scope>mfrom</scope><result>%s</result></spf>\n    </auth_results>\n  </record>\n", s.envelope, s.spf)
}
