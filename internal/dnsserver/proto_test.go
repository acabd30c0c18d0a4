package dnsserver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/snapshot"
)

func newTestServer(t testing.TB, opts Options, domains []*snapshot.Domain) *Server {
	t.Helper()
	var h snapshot.Holder
	h.Store(snapshot.New(testSerial, time.Unix(0, 0), domains))
	srv, err := New(slog.New(slog.DiscardHandler), &h, opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The pure function on crafted messages: what is dropped, what gets which
// RCODE, and that the question is echoed byte for byte when it is.
func TestAnswerHeaderHandling(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testOptions(), testDomains())
	valid := pack(t, question("customer.com._mta-sts.sts.example.net.", dns.TypeTXT, false))
	qend := len(valid)
	with := func(f func(b []byte) []byte) []byte {
		return f(append([]byte{}, valid...))
	}
	tests := []struct {
		name  string
		msg   []byte
		drop  bool
		rcode int
		withQ bool
	}{
		{name: "empty", msg: nil, drop: true},
		{name: "11 bytes", msg: valid[:11], drop: true},
		{name: "response", msg: with(func(b []byte) []byte { b[2] |= 0x80; return b }), drop: true},
		{name: "header only", msg: valid[:12], rcode: dns.RcodeFormatError},
		{name: "truncated question", msg: valid[:qend-2], rcode: dns.RcodeFormatError},
		{name: "no question", msg: with(func(b []byte) []byte { b[5] = 0; return b[:12] }), rcode: dns.RcodeFormatError},
		{name: "two questions", msg: with(func(b []byte) []byte { b[5] = 2; return append(b, valid[12:]...) }), rcode: dns.RcodeFormatError},
		{name: "answer in query", msg: with(func(b []byte) []byte { b[7] = 1; return b }), rcode: dns.RcodeFormatError, withQ: true},
		{name: "NOTIFY", msg: with(func(b []byte) []byte { b[2] |= dns.OpcodeNotify << 3; return b }), rcode: dns.RcodeNotImplemented, withQ: true},
		{name: "UPDATE", msg: with(func(b []byte) []byte { b[2] |= dns.OpcodeUpdate << 3; return b }), rcode: dns.RcodeNotImplemented, withQ: true},
		{name: "STATUS", msg: with(func(b []byte) []byte { b[2] |= dns.OpcodeStatus << 3; return b }), rcode: dns.RcodeNotImplemented, withQ: true},
		{name: "class CH", msg: with(func(b []byte) []byte { b[qend-1] = dns.ClassCHAOS; return b }), rcode: dns.RcodeRefused, withQ: true},
		{name: "qtype OPT", msg: with(func(b []byte) []byte { b[qend-3] = byte(dns.TypeOPT); return b }), rcode: dns.RcodeFormatError, withQ: true},
		{name: "qtype TSIG", msg: with(func(b []byte) []byte { b[qend-3] = byte(dns.TypeTSIG); return b }), rcode: dns.RcodeNotImplemented, withQ: true},
		{name: "pointer in question", msg: []byte{1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 16, 0, 1}, rcode: dns.RcodeFormatError},
		{name: "pointer after a label", msg: []byte{1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0xC0, 12, 0, 16, 0, 1}, rcode: dns.RcodeFormatError},
		{name: "extended label", msg: []byte{1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 16, 0, 1}, rcode: dns.RcodeFormatError},
		{name: "name over 255 bytes", msg: longNameQuery(), rcode: dns.RcodeFormatError},
		{name: "additional RR cut short", msg: with(func(b []byte) []byte { b[11] = 1; return append(b, 0, 0, 41) }), rcode: dns.RcodeFormatError, withQ: true},
		{name: "trailing garbage", msg: append(append([]byte{}, valid...), 1, 2, 3), rcode: dns.RcodeSuccess, withQ: true},
	}
	buf := make([]byte, maxMsg)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := srv.Answer(tc.msg, buf, UDP)
			if tc.drop {
				if resp != nil {
					t.Fatalf("got a %d-byte response, want none", len(resp))
				}
				return
			}
			var r dns.Msg
			if err := r.Unpack(resp); err != nil {
				t.Fatalf("response does not parse: %v", err)
			}
			if r.Rcode != tc.rcode || !r.Response || r.Id != binary.BigEndian.Uint16(tc.msg) {
				t.Errorf("rcode %s qr %v id %d, want %s", dns.RcodeToString[r.Rcode], r.Response, r.Id, dns.RcodeToString[tc.rcode])
			}
			if r.Opcode != int(tc.msg[2]>>3&0xF) {
				t.Errorf("opcode %d, want the query's", r.Opcode)
			}
			if tc.withQ != (len(r.Question) == 1) {
				t.Errorf("question %v, want echoed: %v", r.Question, tc.withQ)
			}
			if tc.withQ && !bytes.Equal(resp[12:qend], tc.msg[12:qend]) {
				t.Errorf("question not echoed byte for byte")
			}
			if tc.rcode != dns.RcodeSuccess && (len(r.Answer) != 0 || len(r.Ns) != 0 || r.Authoritative) {
				t.Errorf("error response with records or AA: %v", &r)
			}
		})
	}
}

func longNameQuery() []byte {
	b := []byte{1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for range 5 {
		b = append(b, 63)
		b = append(b, strings.Repeat("a", 63)...)
	}
	return append(b, 0, 0, 16, 0, 1)
}

// Copies of the RD and CD bits, AA, no RA.
func TestAnswerFlags(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testOptions(), testDomains())
	m := question("customer.com._mta-sts.sts.example.net.", dns.TypeTXT, false)
	m.RecursionDesired = true
	m.CheckingDisabled = true
	m.AuthenticatedData = true
	var r dns.Msg
	if err := r.Unpack(srv.Answer(pack(t, m), nil, UDP)); err != nil {
		t.Fatal(err)
	}
	if !r.RecursionDesired || !r.CheckingDisabled || r.AuthenticatedData || r.RecursionAvailable || !r.Authoritative {
		t.Errorf("flags rd=%v cd=%v ad=%v ra=%v aa=%v, want rd cd aa", r.RecursionDesired, r.CheckingDisabled, r.AuthenticatedData, r.RecursionAvailable, r.Authoritative)
	}
}

func TestEDNS(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	name := "customer.com._mta-sts.sts.example.net."

	t.Run("no OPT without EDNS", func(t *testing.T) {
		r := env.exchange(t, "udp", question(name, dns.TypeTXT, false))
		if r.IsEdns0() != nil || len(r.Answer) != 1 {
			t.Errorf("got %v", r)
		}
	})
	t.Run("DO copied", func(t *testing.T) {
		m := question(name, dns.TypeTXT, false)
		m.SetEdns0(4096, true)
		r := env.exchange(t, "udp", m)
		if opt := r.IsEdns0(); opt == nil || !opt.Do() || opt.UDPSize() != DefaultMaxUDPSize {
			t.Errorf("OPT %v, want DO and size %d", opt, DefaultMaxUDPSize)
		}
	})
	t.Run("options ignored", func(t *testing.T) {
		m := question(name, dns.TypeTXT, true)
		m.IsEdns0().Option = append(m.IsEdns0().Option,
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"},
			&dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		r := env.exchange(t, "udp", m)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || len(r.IsEdns0().Option) != 0 {
			t.Errorf("got %v", r)
		}
	})
	t.Run("BADVERS", func(t *testing.T) {
		// RFC 6891 §6.1.3.
		m := question(name, dns.TypeTXT, true)
		m.IsEdns0().SetVersion(1)
		r := env.exchange(t, "udp", m)
		if r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 {
			t.Errorf("got rcode %d: %v", r.Rcode, r)
		}
	})
	t.Run("two OPT", func(t *testing.T) {
		// RFC 6891 §6.1.1.
		m := question(name, dns.TypeTXT, true)
		m.Extra = append(m.Extra, m.Extra[0])
		r := env.exchange(t, "udp", m)
		if r.Rcode != dns.RcodeFormatError {
			t.Errorf("rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("OPT owner not root", func(t *testing.T) {
		m := question(name, dns.TypeTXT, true)
		m.IsEdns0().Hdr.Name = "example."
		r := env.exchange(t, "udp", m)
		if r.Rcode != dns.RcodeFormatError {
			t.Errorf("rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("TSIG ignored", func(t *testing.T) {
		m := question(name, dns.TypeTXT, true)
		m.Extra = append(m.Extra, &dns.TSIG{Hdr: dns.RR_Header{Name: "key.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm: dns.HmacSHA256, TimeSigned: 1, Fudge: 300, MACSize: 2, MAC: "abcd", OrigId: m.Id})
		// The client library would insist on verifying the reply.
		var r dns.Msg
		if err := r.Unpack(env.srv.Answer(pack(t, m), nil, UDP)); err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("got %v", &r)
		}
	})
}

// RFC 2181 §9, RFC 6891 §6.2.5, RFC 7766 §5: an answer that does not fit
// the client's UDP size is truncated to nothing with TC set, and the
// client gets it over TCP.
func TestTruncation(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	for _, tc := range []struct {
		name  string
		edns  uint16 // 0: no EDNS
		trunc bool
	}{
		{"long.example._smtp._tls.sts.example.net.", 0, true},     // 700 > 512
		{"long.example._smtp._tls.sts.example.net.", 100, true},   // below 512 counts as 512
		{"long.example._smtp._tls.sts.example.net.", 512, true},   //
		{"long.example._smtp._tls.sts.example.net.", 1000, false}, // fits
		{"huge.example._smtp._tls.sts.example.net.", 4096, true},  // 1400 > our 1232
		{"huge.example._smtp._tls.sts.example.net.", 1232, true},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.name, tc.edns), func(t *testing.T) {
			m := question(tc.name, dns.TypeTXT, false)
			if tc.edns > 0 {
				m.SetEdns0(tc.edns, false)
			}
			r := env.exchange(t, "udp", m)
			if r.Truncated != tc.trunc {
				t.Fatalf("TC %v, want %v", r.Truncated, tc.trunc)
			}
			if tc.trunc {
				if len(r.Answer)+len(r.Ns) != 0 || r.Rcode != dns.RcodeSuccess || len(r.Question) != 1 {
					t.Errorf("truncated response carries records: %v", r)
				}
				if (r.IsEdns0() != nil) != (tc.edns > 0) {
					t.Errorf("OPT %v in a response to EDNS %d", r.IsEdns0(), tc.edns)
				}
				r = env.exchange(t, "tcp", m)
			}
			if r.Truncated || len(r.Answer) != 1 || len(strings.Join(r.Answer[0].(*dns.TXT).Txt, "")) < 700 {
				t.Errorf("full answer: %v", r)
			}
		})
	}
}

// Glue that does not fit is left out without TC (RFC 2181 §9: additional
// data is optional).
func TestGlueDroppedWhenFull(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.Nameservers = nil
	opts.Hosts = map[string][]netip.Addr{}
	for i := range 20 {
		ns := fmt.Sprintf("ns%02d.sts.example.net", i)
		opts.Nameservers = append(opts.Nameservers, ns)
		opts.Hosts[ns] = []netip.Addr{netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(i)})}
	}
	srv := newTestServer(t, opts, nil)
	var r dns.Msg
	resp := srv.Answer(pack(t, question("sts.example.net.", dns.TypeNS, false)), nil, UDP)
	if err := r.Unpack(resp); err != nil {
		t.Fatal(err)
	}
	if len(resp) > 512 || r.Truncated || len(r.Answer) != 20 || len(r.Extra) == 0 || len(r.Extra) == 20 {
		t.Errorf("%d bytes, TC %v, %d NS, %d glue; want <= 512, no TC, 20 NS, some glue", len(resp), r.Truncated, len(r.Answer), len(r.Extra))
	}
	for _, rr := range r.Extra {
		if !strings.HasPrefix(rr.Header().Name, "ns") {
			t.Errorf("glue %v", rr)
		}
	}
	resp = srv.Answer(pack(t, question("sts.example.net.", dns.TypeNS, false)), nil, TCP)
	if err := r.Unpack(resp); err != nil || len(r.Extra) != 20 {
		t.Errorf("over TCP: %d glue, err %v; want 20", len(r.Extra), err)
	}
}

func TestSnapshotSwap(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	name := "customer.com._mta-sts.sts.example.net."
	soaSerial := func() uint32 {
		r := env.exchange(t, "udp", question(testZone+".", dns.TypeSOA, false))
		return r.Answer[0].(*dns.SOA).Serial
	}
	if got := soaSerial(); got != testSerial {
		t.Fatalf("serial %d, want %d", got, testSerial)
	}
	env.snaps.Store(snapshot.New(testSerial+1, time.Unix(1, 0), []*snapshot.Domain{
		{Name: "customer.com", STSRecord: "v=STSv1; id=second"},
		{Name: "new.example", STSRecord: "v=STSv1; id=new"},
	}))
	if got := soaSerial(); got != testSerial+1 {
		t.Errorf("serial %d after the swap, want %d", got, testSerial+1)
	}
	for _, tc := range []struct {
		name  string
		rcode int
		txt   string
	}{
		{name, dns.RcodeSuccess, "v=STSv1; id=second"},
		{"new.example._mta-sts.sts.example.net.", dns.RcodeSuccess, "v=STSv1; id=new"},
		{"customer.com._smtp._tls.sts.example.net.", dns.RcodeNameError, ""},
		{"shop.example.co.uk._mta-sts.sts.example.net.", dns.RcodeNameError, ""},
		{"uk._mta-sts.sts.example.net.", dns.RcodeNameError, ""},
	} {
		r := env.exchange(t, "udp", question(tc.name, dns.TypeTXT, false))
		var txt string
		if len(r.Answer) == 1 {
			txt = strings.Join(r.Answer[0].(*dns.TXT).Txt, "")
		}
		if r.Rcode != tc.rcode || txt != tc.txt {
			t.Errorf("%s: %s %q, want %s %q", tc.name, dns.RcodeToString[r.Rcode], txt, dns.RcodeToString[tc.rcode], tc.txt)
		}
		if tc.rcode == dns.RcodeNameError {
			if len(r.Ns) != 1 || r.Ns[0].(*dns.SOA).Serial != testSerial+1 {
				t.Errorf("%s: authority %v, want the new SOA", tc.name, r.Ns)
			}
		}
	}
	// An empty snapshot: the empty non-terminals are gone too.
	env.snaps.Store(snapshot.New(testSerial+2, time.Unix(2, 0), nil))
	for _, n := range []string{"_mta-sts.sts.example.net.", "_smtp._tls.sts.example.net.", "_tls.sts.example.net.", name,
		"_report._dmarc.reports.sts.example.net.", "_dmarc.reports.sts.example.net."} {
		if r := env.exchange(t, "udp", question(n, dns.TypeTXT, false)); r.Rcode != dns.RcodeNameError {
			t.Errorf("%s with nothing hosted: %s, want NXDOMAIN", n, dns.RcodeToString[r.Rcode])
		}
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	var h snapshot.Holder
	bad := []Options{
		{},
		{Zone: "bad..zone"},
		{Zone: "bad zone.net"},
		{Zone: "-bad.example.net"},
		{Zone: "xn--zz.example.net"},
		{Zone: strings.Repeat("a.", 130) + "net"},
		{Zone: testZone, Nameservers: []string{"ns 1.example"}},
		{Zone: testZone, Hostmaster: "a@b@c"},
		{Zone: testZone, Hostmaster: "@example.net"},
		{Zone: testZone, Hosts: map[string][]netip.Addr{"www.example.org": {netip.MustParseAddr("192.0.2.1")}}},
		{Zone: testZone, Hosts: map[string][]netip.Addr{"x._mta-sts.sts.example.net": {netip.MustParseAddr("192.0.2.1")}}},
		{Zone: testZone, Hosts: map[string][]netip.Addr{"_smtp._tls.sts.example.net": {netip.MustParseAddr("192.0.2.1")}}},
		{Zone: testZone, Hosts: map[string][]netip.Addr{"a.sts.example.net": nil}},
		{Zone: testZone, Hosts: map[string][]netip.Addr{"a.sts.example.net": {{}}}},
		{Zone: testZone, Hosts: map[string][]netip.Addr{"a.sts.example.net": {netip.MustParseAddr("fe80::1%eth0")}}},
		{Zone: testZone, DMARCReportDomains: []string{"reports._tls.sts.example.net"}},
		{Zone: testZone, DMARCReportDomains: []string{"bad..name"}},
		{Zone: testZone, MaxUDPSize: 100},
		{Zone: testZone, MaxUDPSize: 70000},
		{Zone: testZone, TTL: -time.Second},
		{Zone: testZone, NegativeTTL: 1 << 62},
	}
	for _, o := range bad {
		if _, err := New(nil, &h, o); err == nil || !strings.HasPrefix(err.Error(), "dnsserver: invalid options") {
			t.Errorf("New(%+v) = %v, want ErrOptions", o, err)
		}
	}
	if _, err := New(nil, nil, Options{Zone: testZone}); err == nil {
		t.Errorf("New with a nil holder succeeded")
	}

	// Defaults, and the two forms of Hostmaster.
	for _, tc := range []struct {
		opts Options
		soa  string
	}{
		{Options{Zone: testZone},
			"sts.example.net. 300 IN SOA ns1.sts.example.net. hostmaster.sts.example.net. 7 3600 600 1209600 300"},
		{Options{Zone: testZone, Hostmaster: "john.doe@Example.NET", Nameservers: []string{"ns.example.org."}},
			`sts.example.net. 300 IN SOA ns.example.org. john\.doe.example.net. 7 3600 600 1209600 300`},
		{Options{Zone: testZone, Hostmaster: "dns.example.net.", TTL: time.Hour, NegativeTTL: time.Minute,
			SOARefresh: 2 * time.Hour, SOARetry: time.Hour, SOAExpire: 24 * time.Hour},
			"sts.example.net. 3600 IN SOA ns1.sts.example.net. dns.example.net. 7 7200 3600 86400 60"},
	} {
		h.Store(snapshot.New(7, time.Unix(0, 0), nil))
		srv, err := New(nil, &h, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		var r dns.Msg
		if err := r.Unpack(srv.Answer(pack(t, question("sts.example.net.", dns.TypeSOA, false)), nil, UDP)); err != nil {
			t.Fatal(err)
		}
		sameRRs(t, "SOA", r.Answer, zone(t, tc.soa))
	}

	// The default name server, inside the zone and without an address:
	// served without glue.
	h.Store(snapshot.New(7, time.Unix(0, 0), nil))
	srv, err := New(nil, &h, Options{Zone: testZone})
	if err != nil {
		t.Fatal(err)
	}
	var r dns.Msg
	if err := r.Unpack(srv.Answer(pack(t, question("sts.example.net.", dns.TypeNS, false)), nil, UDP)); err != nil {
		t.Fatal(err)
	}
	sameRRs(t, "NS", r.Answer, zone(t, "sts.example.net. 300 IN NS ns1.sts.example.net."))
	sameRRs(t, "glue", r.Extra, nil)
}
