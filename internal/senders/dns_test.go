package senders

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/store"
)

// openStore opens a store on a new SQLite database.
func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), slog.New(slog.DiscardHandler), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const rdnsZone = `
10.2.0.192.in-addr.arpa. PTR mail-a.google.com.
mail-a.google.com.       A   192.0.2.10
11.2.0.192.in-addr.arpa. PTR mail-x.google.com.
12.2.0.192.in-addr.arpa. PTR A.Example.NET.
12.2.0.192.in-addr.arpa. PTR b.example.net.
a.example.net.           A   192.0.2.99
b.example.net.           A   192.0.2.12
5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR mx.example.org.
mx.example.org.          AAAA 2001:db8::25
`

func TestReverseDNS(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, rdnsZone, nil)
	st := openStore(t)
	clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	d := NewReverseDNS(srv.Resolver(), st, RDNSOptions{Now: clk.Now, TTL: 48 * time.Hour, NegativeTTL: time.Hour})
	ctx := t.Context()
	ips := []string{"192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "2001:db8::25", "not-an-ip", "192.0.2.010"}
	got, err := d.Resolve(ctx, ips, true)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	tests := []struct {
		ip, confirmed, err string
		names              []string
		ttl                time.Duration
	}{
		{"192.0.2.10", "mail-a.google.com", "", []string{"mail-a.google.com"}, 48 * time.Hour},
		{"192.0.2.11", "", "", []string{"mail-x.google.com"}, 48 * time.Hour},
		{"192.0.2.12", "b.example.net", "", []string{"a.example.net", "b.example.net"}, 48 * time.Hour},
		{"192.0.2.13", "", "nxdomain", nil, time.Hour},
		{"2001:db8::25", "mx.example.org", "", []string{"mx.example.org"}, 48 * time.Hour},
	}
	if len(got) != len(tests) {
		t.Errorf("Resolve gave %d entries, want %d: %v", len(got), len(tests), got)
	}
	for _, tc := range tests {
		p := got[tc.ip]
		names := map[string]bool{}
		for _, n := range p.Names {
			names[n] = true
		}
		ok := len(names) == len(tc.names)
		for _, n := range tc.names {
			ok = ok && names[n]
		}
		if !ok || p.Confirmed != tc.confirmed || p.Error != tc.err || !p.ExpiresAt.Equal(clk.Now().Add(tc.ttl)) {
			t.Errorf("%s: %+v; want names %v, confirmed %q, error %q, ttl %s", tc.ip, p, tc.names, tc.confirmed, tc.err, tc.ttl)
		}
	}
	// Cached: no query until an entry expires; the negative one first.
	n := srv.Queries()
	if _, err := d.Resolve(ctx, ips, true); err != nil || srv.Queries() != n {
		t.Errorf("second Resolve: %v, %d queries, want none", err, srv.Queries()-n)
	}
	clk.Add(2 * time.Hour)
	got, err = d.Resolve(ctx, ips, true)
	if err != nil || srv.Queries() != n+1 || got["192.0.2.13"].Error != "nxdomain" || !got["192.0.2.13"].ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("after the negative TTL: %v, %d queries (want 1), %+v", err, srv.Queries()-n, got["192.0.2.13"])
	}
	// Without lookup: the cache only, expired entries included.
	clk.Add(72 * time.Hour)
	n = srv.Queries()
	got, err = d.Resolve(ctx, append(ips, "192.0.2.14"), false)
	if err != nil || srv.Queries() != n || len(got) != 5 || got["192.0.2.10"].Confirmed != "mail-a.google.com" {
		t.Errorf("cache only: %v, %d queries, %v", err, srv.Queries()-n, got)
	}
	// A fresh ReverseDNS on the same store uses what was stored.
	d2 := NewReverseDNS(srv.Resolver(), st, RDNSOptions{Now: clk.Now})
	if got, err := d2.Resolve(ctx, []string{"2001:db8::25"}, false); err != nil || got["2001:db8::25"].Confirmed != "mx.example.org" {
		t.Errorf("another ReverseDNS: %v, %v", got, err)
	}
}

// TestReverseDNSTimeout: a server that answers too late gives "timeout",
// cached for the failure TTL only.
func TestReverseDNSTimeout(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, rdnsZone, nil)
	srv.SetDelay(time.Second)
	st := openStore(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	d := NewReverseDNS(srv.Resolver(), st, RDNSOptions{Timeout: 100 * time.Millisecond, Now: func() time.Time { return now }})
	start := time.Now()
	got, err := d.Resolve(t.Context(), []string{"192.0.2.10", "192.0.2.11"}, true)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	for _, ip := range []string{"192.0.2.10", "192.0.2.11"} {
		if p := got[ip]; p.Error != "timeout" || len(p.Names) != 0 || !p.ExpiresAt.Equal(now.Add(30*time.Minute)) {
			t.Errorf("%s: %+v, want a timeout for 30 minutes", ip, p)
		}
	}
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Errorf("two lookups with a time-out of 100ms took %s", el)
	}
}

// countingResolver counts the reverse lookups in flight.
type countingResolver struct {
	*net.Resolver
	in, max atomic.Int64
}

func (c *countingResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	n := c.in.Add(1)
	defer c.in.Add(-1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	return c.Resolver.LookupAddr(ctx, addr)
}

var _ Resolver = (*countingResolver)(nil)

// TestReverseDNSPool: never more lookups in flight than workers; every
// address answered.
func TestReverseDNSPool(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, "", nil)
	srv.SetDelay(20 * time.Millisecond)
	r := &countingResolver{Resolver: srv.Resolver()}
	d := NewReverseDNS(r, openStore(t), RDNSOptions{Workers: 3})
	var ips []string
	for i := range 24 {
		ips = append(ips, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String())
	}
	got, err := d.Resolve(t.Context(), ips, true)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(got) != 24 || got["198.51.100.7"].Error != "nxdomain" {
		t.Errorf("%d answers: %v", len(got), got["198.51.100.7"])
	}
	if m := r.max.Load(); m > 3 || m < 1 {
		t.Errorf("%d lookups in flight at most, want 1 to 3", m)
	}
}

// TestReverseDNSCanceled: a canceled context stops the pool; what was
// learned before is kept.
func TestReverseDNSCanceled(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, rdnsZone, nil)
	d := NewReverseDNS(srv.Resolver(), openStore(t), RDNSOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got, err := d.Resolve(ctx, []string{"192.0.2.10"}, true)
	if err == nil || len(got) != 0 {
		t.Errorf("Resolve with a canceled context = %v, %v; want the context's error", got, err)
	}
}

const spfZone = `
example.com.           TXT "v=spf1 ip4:192.0.2.0/28 include:_spf.provider.example ~all"
_spf.provider.example. TXT "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all"
broken.example.        TXT "v=spf1 include:missing.example -all"
two.example.           TXT "v=spf1 -all"
two.example.           TXT "v=spf1 +all"
`

func TestSPFChecker(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, spfZone, nil)
	st := openStore(t)
	clk := &clock{t: time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC)}
	c := NewSPFChecker(srv.Resolver(), st, SPFOptions{Now: clk.Now})
	ctx := t.Context()
	ips := []string{"192.0.2.10", "198.51.100.5", "203.0.113.66", "2001:db8::25", "192.0.2.16", "bad"}
	got, err := c.Check(ctx, "Example.COM.", ips, true)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := map[string]string{"192.0.2.10": "pass", "198.51.100.5": "pass", "203.0.113.66": "softfail", "2001:db8::25": "pass", "192.0.2.16": "softfail"}
	if len(got) != len(want) {
		t.Errorf("Check gave %d results: %v", len(got), got)
	}
	for ip, res := range want {
		if a := got[ip]; a.Result != res || a.Domain != "example.com" || !a.Day.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: %+v, want %s", ip, a, res)
		}
	}
	// The record tree was asked once: two TXT queries for five sources.
	if q := srv.Queries(); q != 2 {
		t.Errorf("%d DNS queries for 5 evaluations, want 2 (the resolver caches)", q)
	}
	// Once per day: the same day comes from the store, without DNS, also
	// for another checker.
	c2 := NewSPFChecker(srv.Resolver(), st, SPFOptions{Now: clk.Now})
	if got, err := c2.Check(ctx, "example.com", ips, true); err != nil || got["203.0.113.66"].Result != "softfail" || srv.Queries() != 2 {
		t.Errorf("the same day again: %v, %d queries", err, srv.Queries())
	}
	// The next day (after the resolver's cache expired): evaluated again.
	clk.Add(2 * time.Hour)
	if got, err := c2.Check(ctx, "example.com", []string{"192.0.2.10", "192.0.2.99"}, false); err != nil || len(got) != 1 ||
		got["192.0.2.10"].Result != "pass" || !got["192.0.2.10"].Day.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) || srv.Queries() != 2 {
		t.Errorf("the next day, cache only: yesterday's result wanted, got %v, %v", got, err)
	}
	if got, err := c2.Check(ctx, "example.com", []string{"192.0.2.10"}, true); err != nil || got["192.0.2.10"].Result != "pass" || srv.Queries() != 3 {
		t.Errorf("the next day: %v, %v, %d queries", got, err, srv.Queries())
	}
	// Errors are results too.
	for _, tc := range []struct{ domain, want string }{
		{"broken.example", "permerror"},
		{"two.example", "permerror"},
		{"nothing.example", "none"},
	} {
		got, err := c.Check(ctx, tc.domain, []string{"192.0.2.10"}, true)
		if err != nil || got["192.0.2.10"].Result != tc.want {
			t.Errorf("%s: %+v, %v; want %s", tc.domain, got, err, tc.want)
		}
	}
}

// TestSPFCheckerTimeout: a record that does not resolve in time is a
// temperror with the reason.
func TestSPFCheckerTimeout(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t, spfZone, nil)
	srv.SetDelay(time.Second)
	c := NewSPFChecker(srv.Resolver(), openStore(t), SPFOptions{Timeout: 100 * time.Millisecond})
	got, err := c.Check(t.Context(), "example.com", []string{"192.0.2.10"}, true)
	if err != nil || got["192.0.2.10"].Result != "temperror" || got["192.0.2.10"].Error == "" {
		t.Errorf("Check = %+v, %v; want a temperror with its reason", got, err)
	}
}
