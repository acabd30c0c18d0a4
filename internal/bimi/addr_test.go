package bimi

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestPublicOnly(t *testing.T) {
	t.Parallel()
	refused := map[string]string{
		"0.0.0.0":            "unspecified",
		"0.1.2.3":            "0.0.0.0/8",
		"127.0.0.1":          "loopback",
		"127.255.0.9":        "loopback",
		"10.1.2.3":           "private",
		"172.16.0.1":         "private",
		"172.31.255.255":     "private",
		"192.168.1.1":        "private",
		"100.64.0.1":         "carrier-grade NAT",
		"100.127.255.254":    "carrier-grade NAT",
		"169.254.169.254":    "link-local",
		"192.0.0.8":          "IETF protocol",
		"192.0.2.10":         "documentation",
		"198.51.100.1":       "documentation",
		"203.0.113.7":        "documentation",
		"198.18.0.1":         "benchmarking",
		"224.0.0.1":          "multicast",
		"239.1.1.1":          "multicast",
		"240.0.0.1":          "reserved",
		"255.255.255.255":    "reserved",
		"::":                 "unspecified",
		"::1":                "loopback",
		"fe80::1":            "link-local",
		"fe80::1%eth0":       "link-local",
		"fc00::1":            "private",
		"fd12:3456::1":       "private",
		"ff02::1":            "multicast",
		"fec0::1":            "site-local",
		"2001:db8::1":        "documentation",
		"3fff::1":            "documentation",
		"2001::1":            "Teredo",
		"100::1":             "discard-only",
		"::127.0.0.1":        "IPv4-compatible",
		"::ffff:127.0.0.1":   "IPv4-mapped loopback",
		"::ffff:10.0.0.1":    "IPv4-mapped private",
		"::ffff:169.254.1.1": "IPv4-mapped link-local",
		"64:ff9b::7f00:1":    "NAT64 form of an address that is loopback",
		"64:ff9b:1::1":       "local-use NAT64",
		"2002:c0a8:0101::1":  "6to4 form of an address that is private",
	}
	for s, reason := range refused {
		err := PublicOnly(netip.MustParseAddr(s))
		if !errors.Is(err, ErrAddressRefused) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: got %v, want refusal %q", s, err, reason)
		}
	}
	if err := PublicOnly(netip.Addr{}); !errors.Is(err, ErrAddressRefused) {
		t.Errorf("zero Addr: got %v", err)
	}
	for _, s := range []string{
		"1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.32.0.1", "192.0.1.1", "198.20.0.1",
		"2a00:1450:4001::1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:0808:0808::1",
	} {
		if err := PublicOnly(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s: refused: %v", s, err)
		}
	}
}
