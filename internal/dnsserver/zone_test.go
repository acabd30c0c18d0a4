package dnsserver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// The SOA as served in answers (TTL 300) and in negative answers (RFC 2308
// §3: TTL min(300, MINIMUM 60)).
const (
	soaAnswer = "sts.example.net. 300 IN SOA ns1.sts.example.net. dns-admin.example.net. 2026112201 3600 600 1209600 60"
	soaNeg    = "sts.example.net. 60 IN SOA ns1.sts.example.net. dns-admin.example.net. 2026112201 3600 600 1209600 60"
)

func TestZone(t *testing.T) {
	t.Parallel()
	envs := map[string]*testEnv{
		"udp":            startPath(t, nil, pathBatch),
		"udp-udpconn":    startPath(t, nil, pathUDPConn),
		"udp-packetconn": startPath(t, nil, pathPacketConn),
	}
	envs["tcp"] = envs["udp"]
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		aa     bool
		answer string
		ns     string
		extra  string
	}{
		// The hosted records.
		{name: "customer.com._mta-sts.sts.example.net.", qtype: dns.TypeTXT, aa: true,
			answer: `customer.com._mta-sts.sts.example.net. 300 IN TXT "v=STSv1; id=20261122T101500Z"`},
		{name: "customer.com._smtp._tls.sts.example.net.", qtype: dns.TypeTXT, aa: true,
			answer: `customer.com._smtp._tls.sts.example.net. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net"`},
		{name: "shop.example.co.uk._mta-sts.sts.example.net.", qtype: dns.TypeTXT, aa: true,
			answer: `shop.example.co.uk._mta-sts.sts.example.net. 300 IN TXT "v=STSv1; id=shop1"`},
		// RFC 8482: ANY gets the TXT record alone.
		{name: "customer.com._mta-sts.sts.example.net.", qtype: dns.TypeANY, aa: true,
			answer: `customer.com._mta-sts.sts.example.net. 300 IN TXT "v=STSv1; id=20261122T101500Z"`},
		// 0x20: names match case-insensitively, the answer echoes the case.
		{name: "CuStOmEr.CoM._MTA-sts.StS.eXaMpLe.NeT.", qtype: dns.TypeTXT, aa: true,
			answer: `CuStOmEr.CoM._MTA-sts.StS.eXaMpLe.NeT. 300 IN TXT "v=STSv1; id=20261122T101500Z"`},
		// NODATA at an existing name.
		{name: "customer.com._mta-sts.sts.example.net.", qtype: dns.TypeA, aa: true, ns: soaNeg},
		{name: "customer.com._smtp._tls.sts.example.net.", qtype: dns.TypeAAAA, aa: true, ns: soaNeg},
		// No TLS-RPT record and nothing below: the name does not exist.
		{name: "shop.example.co.uk._smtp._tls.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		// No TLS-RPT record but a hosted domain below: NODATA.
		{name: "nolts.org._smtp._tls.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "sub.nolts.org._smtp._tls.sts.example.net.", qtype: dns.TypeTXT, aa: true,
			answer: `sub.nolts.org._smtp._tls.sts.example.net. 300 IN TXT "v=TLSRPTv1; rua=mailto:sub@nolts.org"`},
		// The authorization of DMARC reports to Moat's addresses (RFC 7489
		// §7.1), under each report domain inside the zone.
		{name: "customer.com._report._dmarc.reports.sts.example.net.", qtype: dns.TypeTXT, aa: true,
			answer: `customer.com._report._dmarc.reports.sts.example.net. 300 IN TXT "v=DMARC1"`},
		{name: "Shop.Example.co.uk._report._DMARC.reports.sts.example.net.", qtype: dns.TypeTXT, aa: true,
			answer: `Shop.Example.co.uk._report._DMARC.reports.sts.example.net. 300 IN TXT "v=DMARC1"`},
		{name: "customer.com._report._dmarc.sts.example.net.", qtype: dns.TypeANY, aa: true,
			answer: `customer.com._report._dmarc.sts.example.net. 300 IN TXT "v=DMARC1"`},
		{name: "customer.com._report._dmarc.reports.sts.example.net.", qtype: dns.TypeA, aa: true, ns: soaNeg},
		{name: "not-hosted.com._report._dmarc.reports.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		{name: "customer.com._report._dmarc.other.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		{name: "customer.com._report.x._dmarc.reports.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		{name: "com._report._dmarc.reports.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "_report._dmarc.reports.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "_dmarc.reports.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "_dmarc.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		// A domain that is not hosted.
		{name: "not-hosted.com._mta-sts.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		{name: "not-hosted.com._smtp._tls.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		{name: "www.customer.com._mta-sts.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		// Empty non-terminals (RFC 8020): NODATA, never NXDOMAIN.
		{name: "_mta-sts.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "com._mta-sts.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "uk._mta-sts.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "co.uk._mta-sts.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "example.co.uk._mta-sts.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "_tls.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "_smtp._tls.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "com._smtp._tls.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "deep.sts.example.net.", qtype: dns.TypeA, aa: true, ns: soaNeg},
		{name: "org._mta-sts.sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "net._mta-sts.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		{name: "foo._tls.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		{name: "nothing.sts.example.net.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		{name: "a.b.nothing.sts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, ns: soaNeg},
		// NXDOMAIN with 0x20: the SOA names are compressed against the
		// question, so they take its case (names compare case-insensitively).
		{name: "NOTHING.STS.EXAMPLE.NET.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: strings.ReplaceAll(soaNeg, "sts.example.net.", "STS.EXAMPLE.NET.")},
		// The apex.
		{name: "sts.example.net.", qtype: dns.TypeSOA, aa: true, answer: soaAnswer},
		{name: "sts.example.net.", qtype: dns.TypeANY, aa: true, answer: soaAnswer},
		{name: "sts.example.net.", qtype: dns.TypeNS, aa: true,
			answer: `sts.example.net. 300 IN NS ns1.sts.example.net.
sts.example.net. 300 IN NS ns2.elsewhere.example.`,
			extra: `ns1.sts.example.net. 300 IN A 192.0.2.1
ns1.sts.example.net. 300 IN AAAA 2001:db8::1`},
		{name: "sts.example.net.", qtype: dns.TypeTXT, aa: true, ns: soaNeg},
		{name: "sts.example.net.", qtype: dns.TypeA, aa: true, ns: soaNeg},
		{name: "sts.example.net.", qtype: dns.TypeAAAA, aa: true,
			answer: `sts.example.net. 300 IN AAAA 2001:db8::3`},
		// Hosts.
		{name: "mta-sts.sts.example.net.", qtype: dns.TypeA, aa: true,
			answer: `mta-sts.sts.example.net. 300 IN A 192.0.2.10`},
		{name: "mta-sts.sts.example.net.", qtype: dns.TypeANY, aa: true,
			answer: `mta-sts.sts.example.net. 300 IN A 192.0.2.10`},
		{name: "mta-sts.sts.example.net.", qtype: dns.TypeAAAA, aa: true, ns: soaNeg},
		{name: "ns1.sts.example.net.", qtype: dns.TypeAAAA, aa: true,
			answer: `ns1.sts.example.net. 300 IN AAAA 2001:db8::1`},
		{name: "x.deep.sts.example.net.", qtype: dns.TypeANY, aa: true,
			answer: `x.deep.sts.example.net. 300 IN AAAA 2001:db8::2`},
		// Not our zone: REFUSED, not authoritative, nothing else.
		{name: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "example.net.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
		{name: "xsts.example.net.", qtype: dns.TypeTXT, rcode: dns.RcodeRefused},
		{name: "customer.com._mta-sts.sts.example.org.", qtype: dns.TypeTXT, rcode: dns.RcodeRefused},
		{name: ".", qtype: dns.TypeNS, rcode: dns.RcodeRefused},
		// No zone transfers.
		{name: "sts.example.net.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
	}
	for _, path := range []string{"udp", "udp-udpconn", "udp-packetconn", "tcp"} {
		env, network := envs[path], path[:3]
		for _, tc := range tests {
			t.Run(path+"/"+tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
				q := question(tc.name, tc.qtype, true)
				r := env.exchange(t, network, q)
				if r.Rcode != tc.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if r.Authoritative != tc.aa || r.Truncated || r.RecursionAvailable || !r.Response {
					t.Errorf("flags aa=%v tc=%v ra=%v qr=%v, want aa=%v", r.Authoritative, r.Truncated, r.RecursionAvailable, r.Response, tc.aa)
				}
				if r.Id != q.Id || len(r.Question) != 1 || r.Question[0] != q.Question[0] {
					t.Errorf("id %d question %v, want %d %v", r.Id, r.Question, q.Id, q.Question)
				}
				sameRRs(t, "answer", r.Answer, zone(t, tc.answer))
				sameRRs(t, "authority", r.Ns, zone(t, tc.ns))
				sameRRs(t, "additional", r.Extra, zone(t, tc.extra))
				opt := r.IsEdns0()
				if opt == nil || opt.UDPSize() != DefaultMaxUDPSize || opt.Version() != 0 {
					t.Errorf("OPT %v, want UDP size %d version 0", opt, DefaultMaxUDPSize)
				}
			})
		}
	}
}

// A TXT value over 255 bytes is split into character-strings of at most
// 255 bytes that concatenate to the value.
func TestLongTXTSplit(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	want := longRUA(700)
	for _, network := range []string{"udp", "tcp"} {
		r := env.exchange(t, network, question("long.example._smtp._tls.sts.example.net.", dns.TypeTXT, true))
		if len(r.Answer) != 1 {
			t.Fatalf("%s: answer %v", network, r.Answer)
		}
		txt := r.Answer[0].(*dns.TXT).Txt
		if len(txt) != 3 || len(txt[0]) != 255 || len(txt[1]) != 255 || len(txt[2]) != 190 {
			t.Errorf("%s: strings of %d bytes, want 255, 255, 190", network, lens(txt))
		}
		if got := strings.Join(txt, ""); got != want {
			t.Errorf("%s: concatenated %q, want %q", network, got, want)
		}
	}
}

func lens(ss []string) []int {
	var n []int
	for _, s := range ss {
		n = append(n, len(s))
	}
	return n
}
