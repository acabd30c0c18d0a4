package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:1234", []string{"198.51.100.1"}, "192.0.2.1"}, // untrusted peer: header ignored
		{"10.0.0.1:1234", nil, "10.0.0.1"},
		{"10.0.0.1:1234", []string{"198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:1234", []string{"203.0.113.9, 198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
		{"10.0.0.1:1234", []string{"203.0.113.9", "198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:1234", []string{"garbage, 10.0.0.3"}, "10.0.0.1"},
		{"[::1]:1234", []string{"2001:db8::5"}, "2001:db8::5"},
		{"[::ffff:192.0.2.3]:99", nil, "192.0.2.3"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = tc.remote
		for _, x := range tc.xff {
			r.Header.Add("X-Forwarded-For", x)
		}
		if got := ClientAddr(r, trusted).String(); got != tc.want {
			t.Errorf("clientAddr(%s, %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestLimiterBounded(t *testing.T) {
	t.Parallel()
	l := New[netip.Prefix](0.001, 1, 8)
	now := time.Now()
	a := netip.MustParseAddr("192.0.2.1")
	if ok, _ := l.Allow(ClientKey(a), now); !ok {
		t.Fatal("first request refused")
	}
	if ok, wait := l.Allow(ClientKey(a), now); ok || wait <= 0 {
		t.Fatalf("second request: allowed %v, wait %v; want refused with a wait", ok, wait)
	}
	// Many other clients push the first one out, keeping the maps bounded.
	for i := range 100 {
		l.Allow(ClientKey(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})), now)
		if n := len(l.cur) + len(l.prev); n > 8 {
			t.Fatalf("tracking %d clients, want at most 8", n)
		}
	}
	if ok, _ := l.Allow(ClientKey(a), now); !ok {
		t.Error("forgotten client refused; want a fresh bucket")
	}
	// IPv6 clients of one /64 share a bucket.
	l = New[netip.Prefix](0.001, 1, 8)
	l.Allow(ClientKey(netip.MustParseAddr("2001:db8:1:2::1")), now)
	if ok, _ := l.Allow(ClientKey(netip.MustParseAddr("2001:db8:1:2::ffff")), now); ok {
		t.Error("second address of the same /64 allowed; want one bucket per /64")
	}
}
