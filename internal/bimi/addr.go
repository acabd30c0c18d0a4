package bimi

import (
	"fmt"
	"net/netip"
)

// PublicOnly returns an error wrapping ErrAddressRefused unless a is a
// public unicast address: a hosted checker must not become a way to reach
// the networks it runs in. It is the default AllowAddr of Fetch and is
// meant for MTA-STS policy fetches too.
//
// Refused, with their IPv4-mapped (::ffff:a.b.c.d) forms and the IPv4
// addresses embedded in NAT64 (64:ff9b::/96) and 6to4 (2002::/16):
// unspecified (0.0.0.0/8, ::), loopback (127/8, ::1), RFC 1918 private
// (10/8, 172.16/12, 192.168/16), CGNAT shared space (100.64/10, RFC 6598),
// link-local (169.254/16, fe80::/10), IETF protocol assignments
// (192.0.0/24), benchmarking (198.18/15), reserved (240/4) and broadcast,
// multicast (224/4, ff00::/8), unique local (fc00::/7), deprecated
// site-local (fec0::/10), IPv4-compatible (::/96), discard-only (100::/64),
// local-use NAT64 (64:ff9b:1::/48), Teredo (2001::/32, it tunnels to an
// address that cannot be checked) and the documentation ranges
// (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20):
// nothing public lives there, so refusing them costs nothing and keeps
// lab networks that reuse them out of reach.
func PublicOnly(a netip.Addr) error {
	if reason := notPublic(a); reason != "" {
		return fmt.Errorf("%w: %s is %s", ErrAddressRefused, a, reason)
	}
	return nil
}

// notPublic says why a is not a public unicast address, or "".
func notPublic(a netip.Addr) string {
	if !a.IsValid() {
		return "not a valid address"
	}
	if a.Is4In6() {
		if r := notPublic(a.Unmap()); r != "" {
			return "an IPv4-mapped " + r
		}
		return ""
	}
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private (RFC 1918 / RFC 4193)"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	}
	type block struct {
		prefix string
		reason string
	}
	var blocks []block
	if a.Is4() {
		blocks = []block{
			{"0.0.0.0/8", "in 0.0.0.0/8 (this network)"},
			{"100.64.0.0/10", "carrier-grade NAT shared space (RFC 6598)"},
			{"192.0.0.0/24", "IETF protocol assignments (RFC 6890)"},
			{"192.0.2.0/24", "documentation (TEST-NET-1, RFC 5737)"},
			{"198.18.0.0/15", "benchmarking (RFC 2544)"},
			{"198.51.100.0/24", "documentation (TEST-NET-2, RFC 5737)"},
			{"203.0.113.0/24", "documentation (TEST-NET-3, RFC 5737)"},
			{"240.0.0.0/4", "reserved (240.0.0.0/4) or broadcast"},
		}
	} else {
		if p := netip.MustParsePrefix("64:ff9b::/96"); p.Contains(a) {
			b := a.As16()
			if r := notPublic(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); r != "" {
				return "a NAT64 form of an address that is " + r
			}
			return ""
		}
		if p := netip.MustParsePrefix("2002::/16"); p.Contains(a) {
			b := a.As16()
			if r := notPublic(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); r != "" {
				return "a 6to4 form of an address that is " + r
			}
			return ""
		}
		blocks = []block{
			{"::/96", "IPv4-compatible (deprecated, RFC 4291)"},
			{"100::/64", "discard-only (RFC 6666)"},
			{"64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"},
			{"2001::/32", "Teredo (RFC 4380)"},
			{"2001:db8::/32", "documentation (RFC 3849)"},
			{"3fff::/20", "documentation (RFC 9637)"},
			{"fec0::/10", "site-local (deprecated, RFC 3879)"},
		}
	}
	for _, b := range blocks {
		if netip.MustParsePrefix(b.prefix).Contains(a) {
			return b.reason
		}
	}
	return ""
}
