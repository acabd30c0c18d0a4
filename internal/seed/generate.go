// Package seed fills a Moat database with realistic hosted domains and TLS
// reports (RFC 8460 aggregate reports as the big senders write them), for
// demos (`moat serve --dev`, `moat seed`) and the dashboard benchmarks. The
// data is made from a seeded random source: the same options give the same
// data.
package seed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/tlsrpt"
)

// sender is a reporting organization as it appears in real reports.
type sender struct {
	org     string
	contact string
	ipv4    [3]byte // a /24 its MTAs send from
	share   float64 // share of a domain's mail it sends
	chance  float64 // probability that it reports on a given domain
}

// senders are the organizations that send most TLS reports, with their
// real report contacts and sending networks of their kind (documentation
// and well-known ranges; nothing here is used to send anything).
func senders() []sender {
	return []sender{
		{org: "Google LLC", contact: "smtp-tls-reporting@google.com", ipv4: [3]byte{209, 85, 220}, share: 0.45, chance: 1},
		{org: "Microsoft Corporation", contact: "tlsrpt-noreply@microsoft.com", ipv4: [3]byte{40, 107, 22}, share: 0.30, chance: 0.95},
		{org: "Yahoo", contact: "tlsrpt@yahooinc.com", ipv4: [3]byte{98, 137, 64}, share: 0.08, chance: 0.6},
		{org: "Comcast", contact: "tlsrpt@comcast.net", ipv4: [3]byte{96, 114, 154}, share: 0.05, chance: 0.35},
		{org: "Mail.Ru", contact: "tlsrpt@corp.mail.ru", ipv4: [3]byte{94, 100, 180}, share: 0.03, chance: 0.2},
		{org: "Fastmail Pty Ltd", contact: "tlsrpt@fastmail.com", ipv4: [3]byte{103, 168, 172}, share: 0.03, chance: 0.25},
	}
}

// words make domain names that read like customers' names.
var (
	firstWords  = []string{"acme", "blue", "north", "river", "summit", "harbor", "maple", "cedar", "orbit", "pioneer", "silver", "granite", "lumen", "nova", "atlas", "beacon", "crest", "delta", "ember", "fjord"}
	secondWords = []string{"logistics", "clinic", "studio", "foods", "labs", "partners", "dental", "energy", "legal", "travel", "systems", "bakery", "press", "capital", "works", "farms", "motors", "school", "hotel", "media"}
	tlds        = []string{"example", "test"}
)

// DomainName returns the i-th domain name of the generator (0-based):
// unique for every i.
func DomainName(i int) string {
	a := firstWords[i%len(firstWords)]
	b := secondWords[(i/len(firstWords))%len(secondWords)]
	n := i / (len(firstWords) * len(secondWords))
	name := a + "-" + b
	if n > 0 {
		name += strconv.Itoa(n + 1)
	}
	return name + "." + tlds[(i/7)%len(tlds)]
}

// profile is how one generated domain behaves over the period.
type profile struct {
	domain   string
	index    int     // of DomainName
	volume   float64 // sessions a day, all senders
	mx       []string
	mode     string        // mode at the end of the period
	enforced time.Time     // when it went from testing to enforce (zero: never)
	broken   *brokenPeriod // a period of failures, or nil
	quirky   bool          // a few random failures every day
	reporter []sender
}

// brokenPeriod is a time in which one of the domain's MX hosts fails in
// one way: an expired certificate, a wrong name, STARTTLS gone, or the
// policy host unreachable.
type brokenPeriod struct {
	from, to time.Time
	result   string
	mx       string
	reason   string
}

// newProfile draws domain i's behaviour over [start, end).
func newProfile(rnd *rand.Rand, i int, start, end time.Time, broken bool) *profile {
	d := DomainName(i)
	p := &profile{domain: d, index: i}
	// Log-normal volume: most domains are small, a few are big.
	p.volume = math.Round(math.Exp(3.5 + 1.6*rnd.NormFloat64()))
	p.volume = math.Max(3, math.Min(p.volume, 200000))
	switch rnd.IntN(4) {
	case 0:
		p.mx = []string{"mx1." + d, "mx2." + d}
	case 1:
		p.mx = []string{strings.ReplaceAll(d, ".", "-") + ".mail.protection.outlook.com"}
	case 2:
		p.mx = []string{"aspmx.l.google.com", "alt1.aspmx.l.google.com"}
	default:
		p.mx = []string{"mx." + d}
	}
	days := int(end.Sub(start).Hours() / 24)
	p.mode = "testing"
	switch r := rnd.Float64(); {
	case r < 0.55 && days > 10:
		p.mode = "enforce"
		p.enforced = start.AddDate(0, 0, days/4+rnd.IntN(max(1, days/2)))
	case r < 0.6:
		p.mode = "none"
	}
	if (broken || rnd.Float64() < 0.3) && days > 3 {
		b := &brokenPeriod{mx: p.mx[len(p.mx)-1]}
		b.from = start.AddDate(0, 0, rnd.IntN(days))
		b.to = b.from.AddDate(0, 0, 1+rnd.IntN(6))
		switch rnd.IntN(4) {
		case 0:
			b.result, b.reason = tlsrpt.ResultCertificateExpired, "certificate has expired"
		case 1:
			b.result, b.reason = tlsrpt.ResultCertificateHostMismatch, "certificate is valid for another name"
		case 2:
			b.result, b.reason = tlsrpt.ResultSTARTTLSNotSupported, "STARTTLS not offered"
		default:
			b.result, b.reason = tlsrpt.ResultSTSPolicyFetchError, "policy host unreachable"
			b.mx = ""
		}
		p.broken = b
	}
	p.quirky = rnd.Float64() < 0.15
	for _, s := range senders() {
		if rnd.Float64() < s.chance {
			p.reporter = append(p.reporter, s)
		}
	}
	return p
}

// modeOn is the domain's policy mode on day.
func (p *profile) modeOn(day time.Time) string {
	if p.mode == "enforce" && day.Before(p.enforced) {
		return "testing"
	}
	return p.mode
}

// reportsOn returns the reports the domain's senders send about day.
func (p *profile) reportsOn(rnd *rand.Rand, day time.Time) []*tlsrpt.Report {
	mode := p.modeOn(day)
	if mode == "none" {
		return nil // a policy of mode none: senders apply no policy and report little
	}
	weekday := 1.0
	if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
		weekday = 0.6
	}
	policy := []string{"version: STSv1", "mode: " + mode}
	for _, m := range p.mx {
		policy = append(policy, "mx: "+m)
	}
	policy = append(policy, "max_age: 604800")
	var out []*tlsrpt.Report
	for _, s := range p.reporter {
		sessions := int64(math.Round(p.volume * s.share * weekday * (0.8 + 0.4*rnd.Float64())))
		if sessions <= 0 {
			continue
		}
		pr := tlsrpt.PolicyResult{Policy: tlsrpt.Policy{Type: tlsrpt.PolicySTS, String: policy, Domain: p.domain, MXHost: p.mx}}
		var failed int64
		addFailure := func(result, mx, reason string, n int64) {
			if n <= 0 {
				return
			}
			ip := fmt.Sprintf("%d.%d.%d.%d", s.ipv4[0], s.ipv4[1], s.ipv4[2], 1+rnd.IntN(250))
			fd := tlsrpt.FailureDetail{ResultType: result, SendingMTAIP: ip, ReceivingMXHostname: mx,
				FailedSessionCount: n, FailureReasonCode: reason}
			if mx != "" {
				fd.ReceivingIP = fmt.Sprintf("192.0.2.%d", 1+len(mx)%250)
			}
			pr.FailureDetails = append(pr.FailureDetails, fd)
			failed += n
		}
		if b := p.broken; b != nil && !day.Before(b.from) && day.Before(b.to) {
			share := 1.0
			if b.mx != "" {
				share = 1 / float64(len(p.mx))
			}
			addFailure(b.result, b.mx, b.reason, int64(float64(sessions)*share*(0.7+0.3*rnd.Float64())))
		}
		if p.quirky && rnd.Float64() < 0.3 {
			addFailure(tlsrpt.ResultValidationFailure, p.mx[0], "handshake failure", 1+rnd.Int64N(3))
		}
		failed = min(failed, sessions)
		pr.Summary = tlsrpt.Summary{Successful: sessions - failed, Failure: failed}
		start := day.UTC()
		out = append(out, &tlsrpt.Report{
			OrganizationName: s.org,
			DateRange:        tlsrpt.DateRange{Start: start, End: start.Add(24*time.Hour - time.Second)},
			ContactInfo:      s.contact,
			ReportID:         start.Format("2006-01-02") + "T00:00:00Z_" + p.domain + "@" + strings.Fields(strings.ToLower(s.org))[0],
			Policies:         []tlsrpt.PolicyResult{pr},
		})
	}
	return out
}
