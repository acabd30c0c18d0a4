package hosting

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnsserver"
	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/snapshot"
	"github.com/moatmail/moat/internal/store"
)

// startMoatDNS runs Moat's real authoritative DNS server for the test zone,
// serving ds, and returns its address.
func startMoatDNS(t *testing.T, ds ...*store.Domain) string {
	t.Helper()
	var h snapshot.Holder
	var served []*snapshot.Domain
	for _, d := range ds {
		served = append(served, testSettings.Serving(d))
	}
	h.Store(snapshot.New(1, time.Now(), served))
	srv, err := dnsserver.New(discard(), &h, dnsserver.Options{
		Zone:  testSettings.Zone,
		Hosts: map[string][]netip.Addr{"ns1.sts.example.net": {netip.MustParseAddr("192.0.2.53")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pc, l := dnstest.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, pc, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().String()
}

func TestVerify(t *testing.T) {
	t.Parallel()
	d := &store.Domain{Name: "customer.com", Mode: "testing", MX: []string{"mx.customer.com"}, MaxAge: 86400, PolicyID: "20261122T101500Z"}
	moat := startMoatDNS(t, d)
	// The policy host lives outside Moat's zone, in the operator's zone,
	// which the test resolver serves itself.
	const operator = `
mta-sts.example.net. A 192.0.2.10
`
	for _, tc := range []struct {
		name string
		zone string
		want []string // statuses of mta-sts, _mta-sts, _smtp._tls
		fix  []string // substrings of the fixes, "" for none
	}{
		{
			name: "delegated",
			zone: `
mta-sts.customer.com.    CNAME mta-sts.example.net.
_mta-sts.customer.com.   CNAME customer.com._mta-sts.sts.example.net.
_smtp._tls.customer.com. CNAME customer.com._smtp._tls.sts.example.net.`,
			want: []string{StatusOK, StatusOK, StatusOK},
			fix:  []string{"", "", ""},
		},
		{
			name: "nothing published",
			zone: `customer.com. MX 10 mx.customer.com.`,
			want: []string{StatusMissing, StatusMissing, StatusMissing},
			fix: []string{
				"publish mta-sts.customer.com.\tCNAME\tmta-sts.example.net.",
				"publish _mta-sts.customer.com.\tCNAME\tcustomer.com._mta-sts.sts.example.net.",
				"publish _smtp._tls.customer.com.\tCNAME\tcustomer.com._smtp._tls.sts.example.net.",
			},
		},
		{
			name: "wrong targets",
			zone: `
mta-sts.customer.com.    CNAME mta-sts.elsewhere.example.
mta-sts.elsewhere.example. A 192.0.2.99
_mta-sts.customer.com.   CNAME customer.com._mta-sts.sts.example.org.
_smtp._tls.customer.com. CNAME other.com._smtp._tls.sts.example.net.`,
			want: []string{StatusWrong, StatusWrong, StatusWrong},
			fix:  []string{"change the CNAME: mta-sts.customer.com.\tCNAME\tmta-sts.example.net.", "change the CNAME", "customer.com._smtp._tls.sts.example.net."},
		},
		{
			name: "self-published, current",
			zone: `
mta-sts.customer.com.    A 192.0.2.10
_mta-sts.customer.com.   TXT "v=STSv1; id=20261122T101500Z"
_smtp._tls.customer.com. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net"`,
			want: []string{StatusSelf, StatusSelf, StatusSelf},
			fix:  []string{"", "", ""},
		},
		{
			name: "self-published, stale",
			zone: `
mta-sts.customer.com.    A 192.0.2.77
_mta-sts.customer.com.   TXT "v=STSv1; id=20250101T000000Z"
_smtp._tls.customer.com. TXT "v=TLSRPTv1; rua=mailto:old@customer.com"`,
			want: []string{StatusWrong, StatusStale, StatusStale},
			fix:  []string{"replace the address records", `"v=STSv1; id=20261122T101500Z"`, `"v=TLSRPTv1; rua=mailto:tlsrpt@reports.example.net"`},
		},
		{
			name: "two STS records",
			zone: `
mta-sts.customer.com.  CNAME mta-sts.example.net.
_mta-sts.customer.com. TXT "v=STSv1; id=20261122T101500Z"
_mta-sts.customer.com. TXT "v=STSv1; id=other"
_smtp._tls.customer.com. CNAME customer.com._smtp._tls.sts.example.net.`,
			want: []string{StatusOK, StatusWrong, StatusOK},
			fix:  []string{"", "CNAME", ""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := dnstest.Start(t, operator+tc.zone, map[string]string{testSettings.Zone: moat})
			checks := testSettings.Verify(context.Background(), DNSResolver{Addr: res.Addr, Timeout: 2 * time.Second}, d)
			if len(checks) != 3 {
				t.Fatalf("%d checks", len(checks))
			}
			for i, c := range checks {
				if c.Status != tc.want[i] {
					t.Errorf("%s: status %q, want %q (%s; found %v)", c.Name, c.Status, tc.want[i], c.Detail, c.Found)
				}
				if tc.fix[i] == "" && c.Fix != "" {
					t.Errorf("%s: fix %q, want none", c.Name, c.Fix)
				}
				if tc.fix[i] != "" && !strings.Contains(c.Fix, tc.fix[i]) {
					t.Errorf("%s: fix %q does not contain %q", c.Name, c.Fix, tc.fix[i])
				}
				if c.OK() != (tc.fix[i] == "") {
					t.Errorf("%s: OK() = %v with fix %q", c.Name, c.OK(), c.Fix)
				}
			}
		})
	}
}

func TestVerifyZoneNotDelegated(t *testing.T) {
	t.Parallel()
	d := &store.Domain{Name: "customer.com", PolicyID: "20261122T101500Z"}
	// The CNAMEs are right but Moat's zone is not reachable: the resolver
	// knows nothing under sts.example.net.
	res := dnstest.Start(t, `
mta-sts.customer.com.    CNAME mta-sts.example.net.
mta-sts.example.net.     A 192.0.2.10
_mta-sts.customer.com.   CNAME customer.com._mta-sts.sts.example.net.
_smtp._tls.customer.com. CNAME customer.com._smtp._tls.sts.example.net.`, nil)
	checks := testSettings.Verify(context.Background(), DNSResolver{Addr: res.Addr}, d)
	if checks[0].Status != StatusOK {
		t.Errorf("policy host: %+v", checks[0])
	}
	for _, c := range checks[1:] {
		if c.Status != StatusUpstream || !strings.Contains(c.Detail, "delegated (NS)") {
			t.Errorf("%s: %q %q, want %q naming the NS delegation", c.Name, c.Status, c.Detail, StatusUpstream)
		}
	}
}
