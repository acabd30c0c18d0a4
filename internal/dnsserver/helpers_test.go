package dnsserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/snapshot"
)

const testZone = "sts.example.net"

// longRUA makes a TLS-RPT record of about n bytes.
func longRUA(n int) string {
	var b strings.Builder
	b.WriteString("v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net")
	for i := 0; b.Len() < n; i++ {
		b.WriteString(",https://reports.example.net/v1/tlsrpt/")
		b.WriteString(strings.Repeat("x", 20))
	}
	return b.String()[:n]
}

func testDomains() []*snapshot.Domain {
	return []*snapshot.Domain{
		{Name: "customer.com", STSRecord: "v=STSv1; id=20261122T101500Z",
			TLSRPTRecord: "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net"},
		{Name: "shop.example.co.uk", STSRecord: "v=STSv1; id=shop1"},
		{Name: "nolts.org", STSRecord: "v=STSv1; id=n1"},
		{Name: "sub.nolts.org", STSRecord: "v=STSv1; id=s1",
			TLSRPTRecord: "v=TLSRPTv1; rua=mailto:sub@nolts.org"},
		{Name: "long.example", STSRecord: "v=STSv1; id=l1", TLSRPTRecord: longRUA(700)},
		{Name: "huge.example", STSRecord: "v=STSv1; id=h1", TLSRPTRecord: longRUA(1400)},
	}
}

func testOptions() Options {
	return Options{
		Zone:        "STS.Example.NET.",
		Nameservers: []string{"ns1.sts.example.net", "ns2.elsewhere.example"},
		Hostmaster:  "dns-admin@example.net",
		Hosts: map[string][]netip.Addr{
			"ns1.sts.example.net":     {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
			"mta-sts.sts.example.net": {netip.MustParseAddr("192.0.2.10")},
			"x.deep.sts.example.net":  {netip.MustParseAddr("2001:db8::2")},
			"sts.example.net":         {netip.MustParseAddr("2001:db8::3")},
		},
		// Inside the zone (twice, once in another case), the apex, and
		// outside the zone (ignored).
		DMARCReportDomains: []string{"reports.sts.example.net", "Reports.STS.example.net.", "sts.example.net", "reports.example.org"},
		TTL:                300 * time.Second,
		NegativeTTL:        60 * time.Second,
	}
}

const testSerial = 2026112201

// testEnv is a server on 127.0.0.1 with the test zone.
type testEnv struct {
	srv   *Server
	snaps *snapshot.Holder
	udp   string
	tcp   string
	errc  chan error
}

// UDP code paths to test (see readUDP).
const (
	pathBatch      = "batch"      // recvmmsg/sendmmsg on Linux
	pathUDPConn    = "udpconn"    // one datagram per call on a *net.UDPConn
	pathPacketConn = "packetconn" // any other net.PacketConn
)

// plainPacketConn hides the *net.UDPConn behind the interface.
type plainPacketConn struct{ net.PacketConn }

// start runs a server with opts (testOptions when nil) and stops it when
// the test ends.
func start(t *testing.T, opts *Options) *testEnv {
	t.Helper()
	return startPath(t, opts, pathBatch)
}

func startPath(t *testing.T, opts *Options, path string) *testEnv {
	t.Helper()
	return startLogged(t, opts, path, slog.New(slog.DiscardHandler))
}

// startLogged is startPath with the server's logger.
func startLogged(t *testing.T, opts *Options, path string, log *slog.Logger) *testEnv {
	t.Helper()
	if opts == nil {
		o := testOptions()
		opts = &o
	}
	var h snapshot.Holder
	h.Store(snapshot.New(testSerial, time.Unix(0, 0), testDomains()))
	srv, err := New(log, &h, *opts)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.noBatch = srv.noBatch || path != pathBatch
	if path == pathPacketConn {
		pc = plainPacketConn{pc}
	}
	env := &testEnv{srv: srv, snaps: &h, udp: pc.LocalAddr().String(), tcp: l.Addr().String(), errc: make(chan error, 1)}
	go func() { env.errc <- srv.Serve(context.Background(), pc, l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-env.errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return env
}

// exchange sends m over net ("udp" or "tcp") and returns the response.
func (e *testEnv) exchange(t *testing.T, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, UDPSize: 65535}
	addr := e.udp
	if network == "tcp" {
		addr = e.tcp
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	return r
}

func question(name string, qtype uint16, edns bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if edns {
		m.SetEdns0(1232, false)
	}
	return m
}

// zone parses records in zone-file syntax, one per line.
func zone(t *testing.T, text string) []dns.RR {
	t.Helper()
	var rrs []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone literal: %v", err)
	}
	return rrs
}

// sameRRs compares record lists by their zone-file text, in order.
func sameRRs(t *testing.T, section string, got, want []dns.RR) {
	t.Helper()
	var g, w []string
	for _, rr := range got {
		if rr.Header().Rrtype != dns.TypeOPT {
			g = append(g, rr.String())
		}
	}
	for _, rr := range want {
		w = append(w, rr.String())
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s:\n got: %s\nwant: %s", section, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}
