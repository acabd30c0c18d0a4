package check_test

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/check/fakenet"
)

// Loopback addresses of the fake internet's hosts.
const (
	ipGood1     = "127.0.83.10" // mx1.good.test: STARTTLS, valid certificate
	ipGood2     = "127.0.83.11" // mx2.good.test: STARTTLS, valid certificate
	ipNoTLS     = "127.0.83.12" // mx.nostarttls.test: no STARTTLS
	ipExpired   = "127.0.83.13" // mx.expired.test: expired certificate
	ipWrongName = "127.0.83.14" // mx.wrongname.test: certificate for another name
	ipSelfSign  = "127.0.83.15" // mx.selfsigned.test: self-signed certificate
	ipExpiring  = "127.0.83.16" // mx.expiring.test: expires in 5 days
	ipOldTLS    = "127.0.83.17" // mx.oldtls.test: TLS 1.1 at most
	ipWeb       = "127.0.83.50" // policy hosts and the logo host
	ipWebBad    = "127.0.83.51" // mta-sts.badcert.test with a certificate for another name
)

// rsaKey returns the base64 SubjectPublicKeyInfo of an RSA public key
// whose modulus has exactly bits bits (a random odd number: the checker
// only reads its size, and Go no longer generates keys under 1024 bits).
func rsaKey(t testing.TB, bits int) string {
	t.Helper()
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.Add(n, big.NewInt(int64(bits)*2+1))
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// txt writes a TXT record, split into 255-byte strings.
func txt(name, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, value[:255])
		value = value[255:]
	}
	parts = append(parts, value)
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `\"`) + `"`
	}
	return name + ". 60 IN TXT " + strings.Join(parts, " ") + "\n"
}

const goodSVG = `<?xml version="1.0" encoding="UTF-8"?>
<svg version="1.2" baseProfile="tiny-ps" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">
<title>Perfect Inc</title>
<rect width="100" height="100" fill="#008000"/>
</svg>
`

const badSVG = `<?xml version="1.0" encoding="UTF-8"?>
<svg version="1.1" xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 100 50">
<script>alert(1)</script>
<image xlink:href="https://cdn.example/logo.png" width="100" height="50"/>
</svg>
`

// response is what the web host answers for one host name.
type response struct {
	status   int
	ctype    string
	body     string
	location string
}

func policy(mode string, maxAge int, mx ...string) string {
	s := "version: STSv1\r\nmode: " + mode + "\r\n"
	for _, m := range mx {
		s += "mx: " + m + "\r\n"
	}
	return s + fmt.Sprintf("max_age: %d\r\n", maxAge)
}

func plainPolicy(mode string, maxAge int, mx ...string) response {
	return response{status: 200, ctype: "text/plain; charset=utf-8", body: policy(mode, maxAge, mx...)}
}

// world is the zone and web content of every scenario domain.
type world struct {
	zone  strings.Builder
	pages map[string]response // by host name, for the path of the policy or the logo
}

// good adds the records of a domain that passes every check; parts of it
// are then overridden by each scenario.
type domainSpec struct {
	name   string
	mx     []string // "pref host"; "" for none
	spf    string
	dmarc  string
	dkim   map[string]string // selector → record
	sts    []string          // _mta-sts TXT records
	policy *response         // served at mta-sts.<name>
	tlsrpt []string
	bimi   string
	extra  string // more zone text
}

func (w *world) add(d domainSpec) {
	for _, m := range d.mx {
		fmt.Fprintf(&w.zone, "%s. 60 IN MX %s\n", d.name, strings.TrimSuffix(m, ".")+".")
	}
	if d.spf != "" {
		w.zone.WriteString(txt(d.name, d.spf))
	}
	if d.dmarc != "" {
		w.zone.WriteString(txt("_dmarc."+d.name, d.dmarc))
	}
	for sel, rec := range d.dkim {
		w.zone.WriteString(txt(sel+"._domainkey."+d.name, rec))
	}
	for _, s := range d.sts {
		w.zone.WriteString(txt("_mta-sts."+d.name, s))
	}
	if d.policy != nil {
		fmt.Fprintf(&w.zone, "mta-sts.%s. 60 IN A %s\n", d.name, ipWeb)
		w.pages["mta-sts."+d.name] = *d.policy
	}
	for _, s := range d.tlsrpt {
		w.zone.WriteString(txt("_smtp._tls."+d.name, s))
	}
	if d.bimi != "" {
		w.zone.WriteString(txt("default._bimi."+d.name, d.bimi))
	}
	w.zone.WriteString(d.extra)
}

// perfect returns the spec of a domain that passes everything.
func perfect(t testing.TB, name string) domainSpec {
	p := plainPolicy("enforce", 604800, "*.good.test")
	return domainSpec{
		name:   name,
		mx:     []string{"10 mx1.good.test", "20 mx2.good.test"},
		spf:    "v=spf1 mx ip4:192.0.2.0/24 -all",
		dmarc:  "v=DMARC1; p=reject; rua=mailto:dmarc@" + name,
		dkim:   map[string]string{"google": "v=DKIM1; k=rsa; p=" + rsaKey(t, 2048)},
		sts:    []string{"v=STSv1; id=20240101T000000"},
		policy: &p,
		tlsrpt: []string{"v=TLSRPTv1; rua=mailto:tlsrpt@" + name},
		bimi:   "v=BIMI1; l=https://logo.good.test/good.svg; a=https://logo.good.test/vmc.pem",
	}
}

// scenarios is the table of scenario domains: the spec of each and what
// the checker must find.
type scenario struct {
	name      string
	spec      func(t testing.TB) domainSpec
	selectors []string
	want      []want   // findings that must be present
	absent    []string // finding ids that must not be present
	grade     string   // expected grade, "" to skip
	score     int      // expected score, -1 to skip
}

type want struct {
	id       string
	severity check.Severity
	fix      string // substring the fix must contain
	message  string // substring the message must contain
}

func scenarios() []scenario {
	return []scenario{
		{name: "perfect.test", spec: func(t testing.TB) domainSpec { return perfect(t, "perfect.test") },
			want: []want{
				{id: "spf.ok", severity: check.OK, message: "1 of 10 DNS lookups"},
				{id: "dkim.ok", severity: check.OK, message: `"google": RSA key of 2048 bits`},
				{id: "dmarc.ok", severity: check.OK, message: "p=reject"},
				{id: "mta-sts.ok", severity: check.OK, message: "mode enforce"},
				{id: "tls-rpt.ok", severity: check.OK},
				{id: "mx.ok", severity: check.OK, message: "10 mx1.good.test, 20 mx2.good.test"},
				{id: "starttls.ok", severity: check.OK, message: "mx1.good.test (" + ipGood1},
				{id: "bimi.ok", severity: check.OK},
				{id: "dnssec.signed", severity: check.Info, message: "validated the MX answer of perfect.test"},
				{id: "dane.none", severity: check.Info, message: "_25._tcp.mx1.good.test"},
				{id: "dane.tlsa", severity: check.Info, message: "_25._tcp.mx2.good.test. has 1 TLSA record (DNSSEC-validated): 3 1 1 0c72ac70"},
			},
			grade: "A", score: 100},
		{name: "multists.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "multists.test")
			d.sts = []string{"v=STSv1; id=20240101T000000", "v=STSv1; id=20240202T000000"}
			return d
		}, want: []want{{id: "mta-sts.multiple-records", severity: check.Error, message: `"v=STSv1; id=20240202T000000" (valid)`,
			fix: `_mta-sts.multists.test. TXT "v=STSv1; id=2024`}},
			absent: []string{"mta-sts.ok"}, grade: "B", score: 80},
		{name: "redirect.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "redirect.test")
			d.policy = &response{status: 301, location: "https://www.redirect.test/mta-sts.txt"}
			return d
		}, want: []want{{id: "mta-sts.policy-redirect", severity: check.Error, message: "https://www.redirect.test/mta-sts.txt",
			fix: "https://mta-sts.redirect.test/.well-known/mta-sts.txt with status 200"}}, absent: []string{"mta-sts.ok"}},
		{name: "html.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "html.test")
			d.policy = &response{status: 200, ctype: "text/html", body: policy("enforce", 604800, "*.good.test")}
			return d
		}, want: []want{{id: "mta-sts.policy-media-type", severity: check.Error, message: `"text/html"`, fix: "Content-Type: text/plain"}}},
		{name: "badcert.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "badcert.test")
			d.policy = nil
			d.extra = fmt.Sprintf("mta-sts.badcert.test. 60 IN A %s\n", ipWebBad)
			return d
		}, want: []want{{id: "mta-sts.policy-tls", severity: check.Error, message: "www.badcert.test", fix: "mta-sts.badcert.test"}}},
		{name: "uncovered.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "uncovered.test")
			p := plainPolicy("enforce", 604800, "mx1.good.test", "mx9.elsewhere.test")
			d.policy = &p
			return d
		}, want: []want{
			{id: "mta-sts.mx-not-covered", severity: check.Error, message: "MX host mx2.good.test matches none",
				fix: "mx: mx1.good.test\nmx: mx9.elsewhere.test\nmx: mx2.good.test\nmax_age: 604800"},
			{id: "mta-sts.pattern-unused", severity: check.Warning, message: `"mx9.elsewhere.test"`},
		}, absent: []string{"mta-sts.ok"}},
		{name: "testing.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "testing.test")
			p := plainPolicy("testing", 86400, "*.good.test")
			d.policy = &p
			return d
		}, want: []want{{id: "mta-sts.mode-testing", severity: check.Warning, fix: "mode: enforce"}}, score: 90, grade: "A"},
		{name: "shortage.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "shortage.test")
			p := plainPolicy("enforce", 3600, "*.good.test")
			d.policy = &p
			return d
		}, want: []want{{id: "mta-sts.max-age-short", severity: check.Warning, message: "max_age 3600 (1 hour)", fix: "max_age: 604800"}}, score: 97},
		{name: "modenone.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "modenone.test")
			p := plainPolicy("none", 86400)
			d.policy = &p
			return d
		}, want: []want{{id: "mta-sts.mode-none", severity: check.Error}}, absent: []string{"mta-sts.mx-not-covered"}},
		{name: "badpolicy.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "badpolicy.test")
			d.policy = &response{status: 200, ctype: "text/plain", body: "version: STSv1\nmode: enforce\nmx: *.good.test\nmax_age: 99999999\n"}
			return d
		}, want: []want{{id: "mta-sts.policy-syntax", severity: check.Error, message: "max_age"}}},
		{name: "policynotxt.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "policynotxt.test")
			d.sts = nil
			return d
		}, want: []want{{id: "mta-sts.policy-without-record", severity: check.Error, fix: `_mta-sts.policynotxt.test. TXT "v=STSv1; id=`}}},
		{name: "txtnopolicy.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "txtnopolicy.test")
			d.policy = &response{status: 404, ctype: "text/plain", body: "not found"}
			return d
		}, want: []want{{id: "mta-sts.policy-missing", severity: check.Error, message: "404"}}},
		{name: "nothing.test", spec: func(t testing.TB) domainSpec {
			return domainSpec{name: "nothing.test", mx: []string{"10 mx1.good.test"}}
		}, want: []want{
			{id: "spf.missing", severity: check.Error, fix: `nothing.test. TXT "v=spf1 mx -all"`},
			{id: "dmarc.missing", severity: check.Critical, fix: `_dmarc.nothing.test. TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@nothing.test"`},
			{id: "dkim.not-found", severity: check.Warning, message: "14 selectors"},
			{id: "mta-sts.missing", severity: check.Error, fix: "mx: mx1.good.test"},
			{id: "tls-rpt.missing", severity: check.Warning, fix: `_smtp._tls.nothing.test. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@nothing.test"`},
			{id: "bimi.missing", severity: check.Warning, fix: "first bring DMARC to enforcement"},
			{id: "starttls.ok", severity: check.OK},
			{id: "dnssec.unsigned", severity: check.Info},
		}, score: 20, grade: "F"},
		{name: "nullmx.test", spec: func(t testing.TB) domainSpec {
			return domainSpec{name: "nullmx.test", mx: []string{"0 ."}, spf: "v=spf1 -all", dmarc: "v=DMARC1; p=reject"}
		}, want: []want{
			{id: "mx.null", severity: check.Info},
			{id: "dkim.not-needed", severity: check.Info},
			{id: "mta-sts.not-applicable", severity: check.Info},
			{id: "tls-rpt.not-applicable", severity: check.Info},
			{id: "bimi.not-applicable", severity: check.Info},
			{id: "dmarc.no-rua", severity: check.Warning},
		}, absent: []string{"mta-sts.missing", "dkim.not-found", "starttls.ok"}, score: 97, grade: "A"},
		{name: "implicit.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "implicit.test")
			d.mx = nil
			d.extra = "implicit.test. 60 IN A " + ipGood1 + "\n"
			return d
		}, want: []want{
			{id: "mx.implicit", severity: check.Warning, message: ipGood1},
			{id: "starttls.cert-name", severity: check.Error, message: "implicit.test (" + ipGood1, fix: "mx1.good.test"},
		}},
		{name: "nomail.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "nomail.test")
			d.mx = nil
			return d
		}, want: []want{{id: "mx.none", severity: check.Error, fix: "nomail.test. MX 0 ."}}},
		{name: "mixednull.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "mixednull.test")
			d.mx = append(d.mx, "0 .")
			return d
		}, want: []want{{id: "mx.null-mixed", severity: check.Error, fix: "Delete the record mixednull.test. MX 0 ."}}},
		{name: "unresolvable.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "unresolvable.test")
			d.mx = append(d.mx, "30 mx.gone.test")
			return d
		}, want: []want{{id: "mx.host-unresolvable", severity: check.Error, message: "mx.gone.test"},
			{id: "mta-sts.mx-not-covered", severity: check.Error, message: "mx.gone.test"}}},
		{name: "nostarttls.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "nostarttls.test")
			d.mx = []string{"10 mx.nostarttls.test"}
			p := plainPolicy("enforce", 604800, "mx.nostarttls.test")
			d.policy = &p
			return d
		}, want: []want{{id: "starttls.missing", severity: check.Critical, message: "mx.nostarttls.test (" + ipNoTLS, fix: "Enable STARTTLS on mx.nostarttls.test"}},
			absent: []string{"starttls.ok"}, score: 85},
		{name: "expired.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "expired.test")
			d.mx = []string{"10 mx.expired.test"}
			p := plainPolicy("enforce", 604800, "mx.expired.test")
			d.policy = &p
			return d
		}, want: []want{{id: "starttls.cert-expired", severity: check.Error, fix: "Renew the certificate of mx.expired.test (it expired on"}}, score: 90},
		{name: "wrongname.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "wrongname.test")
			d.mx = []string{"10 mx.wrongname.test"}
			p := plainPolicy("enforce", 604800, "mx.wrongname.test")
			d.policy = &p
			return d
		}, want: []want{{id: "starttls.cert-name", severity: check.Error, fix: "subjectAltName includes mx.wrongname.test (the current one covers other.wrongname.test)"}}},
		{name: "selfsigned.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "selfsigned.test")
			d.mx = []string{"10 mx.selfsigned.test"}
			p := plainPolicy("enforce", 604800, "mx.selfsigned.test")
			d.policy = &p
			return d
		}, want: []want{{id: "starttls.cert-untrusted", severity: check.Error}}},
		{name: "expiring.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "expiring.test")
			d.mx = []string{"10 mx.expiring.test"}
			p := plainPolicy("enforce", 604800, "mx.expiring.test")
			d.policy = &p
			return d
		}, want: []want{{id: "starttls.cert-expiring", severity: check.Warning, message: "expires in 4 days"}, {id: "starttls.ok", severity: check.OK}}, score: 98},
		{name: "oldtls.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "oldtls.test")
			d.mx = []string{"10 mx.oldtls.test"}
			p := plainPolicy("enforce", 604800, "mx.oldtls.test")
			d.policy = &p
			return d
		}, want: []want{{id: "starttls.tls-old", severity: check.Error, message: "TLS 1.1"}}, absent: []string{"starttls.ok"}, score: 92},
		{name: "spflimit.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spflimit.test")
			d.spf = "v=spf1 include:a.spflimit.test include:b.spflimit.test mx -all"
			d.extra = txt("a.spflimit.test", "v=spf1 include:a1.spflimit.test include:a2.spflimit.test a:x.spflimit.test -all") +
				txt("a1.spflimit.test", "v=spf1 a:x.spflimit.test mx:spflimit.test -all") +
				txt("a2.spflimit.test", "v=spf1 a:x.spflimit.test -all") +
				txt("b.spflimit.test", "v=spf1 include:b1.spflimit.test a:x.spflimit.test -all") +
				txt("b1.spflimit.test", "v=spf1 a:x.spflimit.test a:x.spflimit.test -all") +
				"x.spflimit.test. 60 IN A 192.0.2.1\n"
			return d
		}, want: []want{{id: "spf.lookup-limit", severity: check.Error,
			message: "needs 13 DNS lookups, over the limit of 10; the limit is passed at a:x.spflimit.test (lookup 11) in the record of b1.spflimit.test. include:a.spflimit.test costs 7, include:b.spflimit.test costs 5, the record's own a/mx/ptr/exists terms cost 1",
			fix:     "replace the costliest include"}}, absent: []string{"spf.ok"}, score: 85},
		{name: "spfvoid.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spfvoid.test")
			d.spf = "v=spf1 a:gone1.spfvoid.test include:inc.spfvoid.test mx -all"
			d.extra = txt("inc.spfvoid.test", "v=spf1 a:gone2.spfvoid.test exists:gone3.spfvoid.test -all")
			return d
		}, want: []want{{id: "spf.void-limit", severity: check.Error, message: "3 void lookups", fix: "exists:gone3.spfvoid.test (in inc.spfvoid.test)"}}},
		{name: "spfplusall.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spfplusall.test")
			d.spf = "v=spf1 mx +all"
			return d
		}, want: []want{{id: "spf.pass-all", severity: check.Critical, fix: `spfplusall.test. TXT "v=spf1 mx -all"`}}},
		{name: "spfneutral.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spfneutral.test")
			d.spf = "v=spf1 mx ?all"
			return d
		}, want: []want{{id: "spf.neutral-all", severity: check.Warning, fix: `spfneutral.test. TXT "v=spf1 mx -all"`}}},
		{name: "spfnoall.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spfnoall.test")
			d.spf = "v=spf1 mx ptr"
			return d
		}, want: []want{
			{id: "spf.no-all", severity: check.Warning, fix: `spfnoall.test. TXT "v=spf1 mx ptr -all"`},
			{id: "spf.ptr", severity: check.Warning, fix: `spfnoall.test. TXT "v=spf1 mx"`},
		}},
		{name: "spfmulti.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spfmulti.test")
			d.extra = txt("spfmulti.test", "v=spf1 -all")
			return d
		}, want: []want{{id: "spf.multiple", severity: check.Error}}},
		{name: "spfbadinclude.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spfbadinclude.test")
			d.spf = "v=spf1 include:nospf.spfbadinclude.test -all"
			d.extra = txt("nospf.spfbadinclude.test", "hello")
			return d
		}, want: []want{{id: "spf.include-error", severity: check.Error, message: "nospf.spfbadinclude.test"}}},
		{name: "sub.orgdmarc.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "sub.orgdmarc.test")
			d.dmarc = ""
			d.extra = txt("_dmarc.orgdmarc.test", "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@orgdmarc.test")
			return d
		}, want: []want{{id: "dmarc.org-domain", severity: check.Info, message: "_dmarc.orgdmarc.test"},
			{id: "dmarc.ok", severity: check.OK, message: "sp=quarantine"}}, score: 100},
		{name: "sub.orgnone.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "sub.orgnone.test")
			d.dmarc = ""
			d.extra = txt("_dmarc.orgnone.test", "v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@orgnone.test")
			return d
		}, want: []want{{id: "dmarc.policy-none", severity: check.Warning, message: "sp=none at _dmarc.orgnone.test",
			fix: `_dmarc.orgnone.test. TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@orgnone.test"`},
			{id: "bimi.dmarc-not-enforced", severity: check.Error}}},
		{name: "foreignrua.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "foreignrua.test")
			d.dmarc = "v=DMARC1; p=reject; rua=mailto:dmarc@reports.other.test,mailto:agg@authorized.test"
			d.extra = txt("foreignrua.test._report._dmarc.authorized.test", "v=DMARC1")
			return d
		}, want: []want{{id: "dmarc.report-unauthorized", severity: check.Error, message: "mailto:dmarc@reports.other.test",
			fix: `foreignrua.test._report._dmarc.reports.other.test. TXT "v=DMARC1"`}}, score: 97},
		{name: "dmarcweak.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dmarcweak.test")
			d.dmarc = "v=DMARC1; p=reject; sp=none; np=none; pct=50; t=y; rua=mailto:dmarc@dmarcweak.test"
			return d
		}, want: []want{
			{id: "dmarc.subdomain-none", severity: check.Warning, fix: `_dmarc.dmarcweak.test. TXT "v=DMARC1; p=reject; np=none; pct=50; t=y; rua=mailto:dmarc@dmarcweak.test"`},
			{id: "dmarc.nonexistent-none", severity: check.Warning},
			{id: "dmarc.pct", severity: check.Warning, message: "pct=50"},
			{id: "dmarc.testing", severity: check.Warning},
			{id: "bimi.dmarc-not-enforced", severity: check.Error, message: "sp=none"},
		}},
		{name: "dmarcnone.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dmarcnone.test")
			d.dmarc = "v=DMARC1; p=none"
			return d
		}, want: []want{
			{id: "dmarc.policy-none", severity: check.Warning, fix: `_dmarc.dmarcnone.test. TXT "v=DMARC1; p=quarantine"`},
			{id: "dmarc.no-rua", severity: check.Warning, fix: `_dmarc.dmarcnone.test. TXT "v=DMARC1; p=none; rua=mailto:dmarc@dmarcnone.test"`},
			{id: "bimi.dmarc-not-enforced", severity: check.Error, message: "p=none"},
		}, score: 72, grade: "C"},
		{name: "dmarcsyntax.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dmarcsyntax.test")
			d.dmarc = "v=DMARC1; p=block"
			return d
		}, want: []want{{id: "dmarc.syntax", severity: check.Error}}},
		{name: "dkim1024.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dkim1024.test")
			d.dkim = map[string]string{"default": "v=DKIM1; k=rsa; p=" + rsaKey(t, 1024)}
			return d
		}, want: []want{{id: "dkim.rsa-short", severity: check.Warning, message: "1024-bit"}}, absent: []string{"dkim.ok"}, score: 97},
		{name: "dkim512.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dkim512.test")
			d.dkim = map[string]string{"s1": "v=DKIM1; k=rsa; p=" + rsaKey(t, 512)}
			return d
		}, want: []want{{id: "dkim.rsa-weak", severity: check.Error, message: "512-bit"}}, score: 90},
		{name: "dkimrevoked.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dkimrevoked.test")
			d.dkim = map[string]string{"k1": "v=DKIM1; p="}
			return d
		}, want: []want{{id: "dkim.revoked", severity: check.Info, message: `"k1"`}, {id: "dkim.not-found", severity: check.Warning}}},
		{name: "dkimtesting.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dkimtesting.test")
			d.dkim = map[string]string{"mail": "v=DKIM1; t=y; k=rsa; p=" + rsaKey(t, 2048)}
			return d
		}, want: []want{{id: "dkim.testing", severity: check.Warning, fix: `mail._domainkey.dkimtesting.test. TXT "v=DKIM1; k=rsa; p=`}}},
		{name: "dkimnamed.test", selectors: []string{"custom2024", "absent"}, spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dkimnamed.test")
			d.dkim = map[string]string{"custom2024": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}
			return d
		}, want: []want{{id: "dkim.ok", severity: check.OK, message: `"custom2024": Ed25519 key`},
			{id: "dkim.selector-missing", severity: check.Error, message: `"absent"`}}},
		{name: "tlsrptmulti.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "tlsrptmulti.test")
			d.tlsrpt = []string{"v=TLSRPTv1; rua=mailto:a@tlsrptmulti.test", "v=TLSRPTv1; rua=https://r.tlsrptmulti.test/v1"}
			return d
		}, want: []want{{id: "tls-rpt.multiple", severity: check.Error, fix: `_smtp._tls.tlsrptmulti.test. TXT "v=TLSRPTv1; rua=mailto:a@tlsrptmulti.test,https://r.tlsrptmulti.test/v1"`}}},
		{name: "tlsrptbad.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "tlsrptbad.test")
			d.tlsrpt = []string{"v=TLSRPTv1; rua=ftp://r.tlsrptbad.test/"}
			return d
		}, want: []want{{id: "tls-rpt.syntax", severity: check.Error, message: "ftp"}}},
		{name: "bimibadsvg.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "bimibadsvg.test")
			d.bimi = "v=BIMI1; l=https://logo.good.test/bad.svg; a=https://logo.good.test/vmc.pem"
			return d
		}, want: []want{{id: "bimi.svg", severity: check.Error, fix: `baseProfile="tiny-ps"`}}, absent: []string{"bimi.ok"}, score: 90},
		{name: "bimilogo404.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "bimilogo404.test")
			d.bimi = "v=BIMI1; l=https://logo.good.test/missing.svg"
			return d
		}, want: []want{{id: "bimi.logo-fetch", severity: check.Error, message: "missing.svg"},
			{id: "bimi.no-evidence", severity: check.Warning}}},
		{name: "bimidmarcnone.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "bimidmarcnone.test")
			d.dmarc = "v=DMARC1; p=quarantine; pct=20; rua=mailto:d@bimidmarcnone.test"
			return d
		}, want: []want{{id: "bimi.dmarc-not-enforced", severity: check.Error, message: "pct=20"}}},
		{name: "dkimsyntax.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dkimsyntax.test")
			d.dkim = map[string]string{"default": "v=DKIM1; k=rsa; p=!!!notbase64"}
			return d
		}, want: []want{{id: "dkim.syntax", severity: check.Error, message: "default._domainkey.dkimsyntax.test"}, {id: "dkim.not-found", severity: check.Warning}}},
		{name: "dkimmulti.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dkimmulti.test")
			d.extra = txt("google._domainkey.dkimmulti.test", "v=DKIM1; p=")
			return d
		}, want: []want{{id: "dkim.multiple", severity: check.Error, message: "google._domainkey.dkimmulti.test"}}},
		{name: "dmarcmulti.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "dmarcmulti.test")
			d.extra = txt("_dmarc.dmarcmulti.test", "v=DMARC1; p=none")
			return d
		}, want: []want{{id: "dmarc.multiple", severity: check.Error, message: `"v=DMARC1; p=none"`}, {id: "bimi.dmarc-not-enforced", severity: check.Error}}},
		{name: "bimimulti.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "bimimulti.test")
			d.extra = txt("default._bimi.bimimulti.test", "v=BIMI1; l=https://logo.good.test/other.svg")
			return d
		}, want: []want{{id: "bimi.multiple", severity: check.Error}}},
		{name: "sub.bimiorg.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "sub.bimiorg.test")
			d.extra = txt("default._bimi.bimiorg.test", d.bimi)
			d.bimi = ""
			return d
		}, want: []want{{id: "bimi.org-domain", severity: check.Info, message: "default._bimi.bimiorg.test"}, {id: "bimi.ok", severity: check.OK}}, score: 100},
		{name: "spflong.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spflong.test")
			d.spf = "v=spf1 mx"
			for i := 0; i < 30; i++ {
				d.spf += fmt.Sprintf(" ip4:198.51.100.%d", i)
			}
			d.spf += " -all"
			return d
		}, want: []want{{id: "spf.too-long", severity: check.Warning, fix: "_spf.spflong.test"}}, score: 98},
		{name: "spfloop.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spfloop.test")
			d.spf = "v=spf1 include:a.spfloop.test -all"
			d.extra = txt("a.spfloop.test", "v=spf1 include:spfloop.test -all")
			return d
		}, want: []want{{id: "spf.permerror", severity: check.Error, message: "loop"}}},
		{name: "spfmacro.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "spfmacro.test")
			d.spf = "v=spf1 mx exists:%{i}._spf.spfmacro.test -all"
			return d
		}, want: []want{{id: "spf.unexpanded", severity: check.Info, message: "exists:%{i}._spf.spfmacro.test"}, {id: "spf.ok", severity: check.OK}}},
		{name: "policy500.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "policy500.test")
			d.policy = &response{status: 500, ctype: "text/plain", body: "oops"}
			return d
		}, want: []want{{id: "mta-sts.policy-status", severity: check.Error, message: "500"}}},
		{name: "policybig.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "policybig.test")
			d.policy = &response{status: 200, ctype: "text/plain", body: policy("enforce", 604800, "*.good.test") + strings.Repeat("x", 70<<10)}
			return d
		}, want: []want{{id: "mta-sts.policy-too-large", severity: check.Error, message: "65536"}}},
		{name: "dnsfail.test", spec: func(t testing.TB) domainSpec {
			return perfect(t, "dnsfail.test")
		}, want: []want{
			{id: "mta-sts.dns-error", severity: check.Error},
			{id: "tls-rpt.dns-error", severity: check.Error},
			{id: "dmarc.dns-error", severity: check.Error},
			{id: "bimi.dns-error", severity: check.Error},
			{id: "dkim.dns-error", severity: check.Warning, message: "selector1._domainkey.dnsfail.test"},
			{id: "spf.ok", severity: check.OK},
		}},
		{name: "bimideclined.test", spec: func(t testing.TB) domainSpec {
			d := perfect(t, "bimideclined.test")
			d.bimi = "v=BIMI1; l=; a=;"
			return d
		}, want: []want{{id: "bimi.declined", severity: check.Warning}}, score: 90},
	}
}

func (w *world) pagesHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		host := req.Host
		if h, _, found := strings.Cut(host, ":"); found {
			host = h
		}
		if host == "logo.good.test" {
			switch req.URL.Path {
			case "/good.svg":
				rw.Header().Set("Content-Type", "image/svg+xml")
				_, _ = rw.Write([]byte(goodSVG))
			case "/bad.svg":
				rw.Header().Set("Content-Type", "image/svg+xml")
				_, _ = rw.Write([]byte(badSVG))
			default:
				http.NotFound(rw, req)
			}
			return
		}
		resp, ok := w.pages[host]
		if !ok || req.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(rw, req)
			return
		}
		if resp.location != "" {
			rw.Header().Set("Location", resp.location)
		}
		if resp.ctype != "" {
			rw.Header().Set("Content-Type", resp.ctype)
		}
		rw.WriteHeader(resp.status)
		_, _ = rw.Write([]byte(resp.body))
	})
}

// startWorld starts the fake internet with every scenario domain.
func startWorld(t *testing.T) *fakenet.Net {
	t.Helper()
	w := &world{pages: map[string]response{}}
	var webNames []string
	for _, s := range scenarios() {
		d := s.spec(t)
		w.add(d)
		if d.policy != nil {
			webNames = append(webNames, "mta-sts."+d.name)
		}
	}
	webNames = append(webNames, "logo.good.test")
	w.zone.WriteString("_25._tcp.mx2.good.test. 60 IN TLSA 3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6\n")
	fmt.Fprintf(&w.zone, "logo.good.test. 60 IN A %s\n", ipWeb)
	for host, ip := range map[string]string{
		"mx1.good.test": ipGood1, "mx2.good.test": ipGood2, "mx.nostarttls.test": ipNoTLS,
		"mx.expired.test": ipExpired, "mx.wrongname.test": ipWrongName, "mx.selfsigned.test": ipSelfSign,
		"mx.expiring.test": ipExpiring, "mx.oldtls.test": ipOldTLS,
	} {
		fmt.Fprintf(&w.zone, "%s. 60 IN A %s\n", host, ip)
	}
	now := time.Now()
	// Nothing listens on UDP port 9 (discard) of this loopback address:
	// queries forwarded there fail at once, and the DNS server answers
	// SERVFAIL.
	const deadDNS = "127.0.83.99:9"
	return fakenet.Start(t, fakenet.Spec{
		Zone:   w.zone.String(),
		Signed: []string{"perfect.test", "mx2.good.test"},
		Forward: map[string]string{
			"_mta-sts.dnsfail.test": deadDNS, "_smtp._tls.dnsfail.test": deadDNS, "_dmarc.dnsfail.test": deadDNS,
			"_bimi.dnsfail.test": deadDNS, "selector1._domainkey.dnsfail.test": deadDNS,
		},
		SMTP: []fakenet.SMTPHost{
			{Addr: ipGood1, Hostname: "mx1.good.test"},
			{Addr: ipGood2, Hostname: "mx2.good.test"},
			{Addr: ipNoTLS, Hostname: "mx.nostarttls.test", NoSTARTTLS: true},
			{Addr: ipExpired, Hostname: "mx.expired.test", Cert: fakenet.Cert{NotBefore: now.Add(-100 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}},
			{Addr: ipWrongName, Hostname: "mx.wrongname.test", Cert: fakenet.Cert{Names: []string{"other.wrongname.test"}}},
			{Addr: ipSelfSign, Hostname: "mx.selfsigned.test", Cert: fakenet.Cert{SelfSigned: true}},
			{Addr: ipExpiring, Hostname: "mx.expiring.test", Cert: fakenet.Cert{NotAfter: now.Add(5*24*time.Hour - time.Hour)}},
			{Addr: ipOldTLS, Hostname: "mx.oldtls.test", MaxTLSVersion: tls.VersionTLS11},
		},
		HTTPS: []fakenet.HTTPSHost{
			{Addr: ipWeb, Names: webNames, Handler: w.pagesHandler()},
			{Addr: ipWebBad, Names: []string{"mta-sts.badcert.test"}, Cert: fakenet.Cert{Names: []string{"www.badcert.test"}}, Handler: w.pagesHandler()},
		},
	})
}

// checker returns a checker for the fake internet.
func checker(n *fakenet.Net, allowPrivate bool, selectors []string) *check.Checker {
	return check.New(check.Options{
		Resolver:      n.DNS.Resolver(),
		DNSAddr:       n.DNSAddr,
		RootCAs:       n.RootCAs,
		SMTPPort:      n.SMTPPort,
		HTTPSPort:     n.HTTPSPort,
		AllowPrivate:  allowPrivate,
		Timeout:       15 * time.Second,
		StepTimeout:   5 * time.Second,
		DKIMSelectors: selectors,
	})
}

func TestScenarios(t *testing.T) {
	n := startWorld(t)
	for _, s := range scenarios() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			rep, err := checker(n, true, s.selectors).Check(t.Context(), s.name)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			verifyReport(t, rep)
			for _, w := range s.want {
				f := findWith(rep, w)
				if f == nil {
					t.Errorf("no finding %s (%s) with message containing %q and fix containing %q", w.id, w.severity, w.message, w.fix)
				}
			}
			for _, id := range s.absent {
				if f := rep.Find(id); f != nil {
					t.Errorf("unexpected finding %s: %s", id, f.Message)
				}
			}
			if s.grade != "" && rep.Grade != s.grade {
				t.Errorf("grade %s (score %d), want %s", rep.Grade, rep.Score, s.grade)
			}
			if s.score != 0 && rep.Score != s.score {
				t.Errorf("score %d, want %d", rep.Score, s.score)
			}
			if t.Failed() {
				t.Logf("findings of %s:\n%s", s.name, dump(rep))
			}
		})
	}
}

// findWith returns the finding matching w, or nil.
func findWith(rep *check.Report, w want) *check.Finding {
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if f.ID == w.id && (w.severity == "" || f.Severity == w.severity) &&
			strings.Contains(f.Message, w.message) && strings.Contains(f.Fix, w.fix) {
			return f
		}
	}
	return nil
}

// verifyReport checks what must hold for every report: the score is the
// sum the documentation describes, penalties follow the rules, every
// finding that costs points has a fix and a reason.
func verifyReport(t *testing.T, rep *check.Report) {
	t.Helper()
	rules := map[string]check.Rule{}
	for _, r := range check.Rules() {
		rules[r.ID] = r
	}
	penalty := map[string]int{}
	for _, f := range rep.Findings {
		r, ok := rules[f.ID]
		if !ok {
			t.Errorf("finding %s has no rule", f.ID)
			continue
		}
		if f.Severity != r.Severity || f.Penalty != r.Penalty || f.Pillar != r.Pillar || f.Component != r.Component {
			t.Errorf("finding %+v does not follow its rule %+v", f, r)
		}
		if f.Penalty > 0 && (f.Fix == "" || f.Why == "") {
			t.Errorf("finding %s costs %d points but has no fix or why: %+v", f.ID, f.Penalty, f)
		}
		if f.Message == "" {
			t.Errorf("finding %s has no message", f.ID)
		}
		penalty[f.Pillar+"/"+f.Component] += f.Penalty
	}
	total := 0
	for _, p := range check.Pillars() {
		for _, c := range p.Components {
			score := max(0, c.Max-penalty[p.Name+"/"+c.Name])
			if rep.NullMX && p.Name != check.Impersonation {
				score = c.Max
			}
			total += score
		}
	}
	if rep.Score != total {
		t.Errorf("score %d, recomputed by hand %d", rep.Score, total)
	}
	if rep.Grade != check.Grade(rep.Score) {
		t.Errorf("grade %s for score %d", rep.Grade, rep.Score)
	}
	if !slices.IsSortedFunc(rep.Timings.Steps, func(a, b check.Step) int { return int(a.Start - b.Start) }) || len(rep.Timings.Steps) == 0 {
		t.Errorf("timings steps missing or unsorted: %+v", rep.Timings.Steps)
	}
}

func dump(rep *check.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "score %d grade %s\n", rep.Score, rep.Grade)
	for _, f := range rep.Findings {
		fmt.Fprintf(&b, "  %-28s %-8s -%d %s\n      fix: %s\n", f.ID, f.Severity, f.Penalty, f.Message, f.Fix)
	}
	return b.String()
}
