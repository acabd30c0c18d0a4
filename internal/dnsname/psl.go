package dnsname

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// OrgDomain returns the organizational domain of name (RFC 7489 §3.2,
// kept by DMARCbis): its public suffix by the Public Suffix List (ICANN and
// private sections) plus one label, so "a.b.example.co.uk" gives
// "example.co.uk" and "x.user.github.io" gives "user.github.io". A name the
// list does not cover falls under its implicit "*" rule:
// "foo.bar.example" gives "bar.example".
//
// name is lower-cased and one trailing dot removed; no other validation is
// done. A name that is itself a public suffix ("com", "co.uk"), has a
// single label, or cannot be split (an empty label) is returned as it is
// (lower-cased, without the trailing dot): it is its own organizational
// domain.
func OrgDomain(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return org
}

// isPublicSuffix reports whether name (a lower-case A-label name of n
// labels) is listed as a public suffix. The list's implicit "*" rule makes
// any single label a suffix; it counts only when a rule lists it
// ("com"), so that "localhost" is refused as a single label, not as a
// public suffix.
func isPublicSuffix(name string, n int) bool {
	ps, icann := publicsuffix.PublicSuffix(name)
	return ps == name && (n > 1 || icann)
}

func publicSuffixReason(name string) string {
	return "is a public suffix, under which anyone can register names (Public Suffix List, https://publicsuffix.org); give a domain under it, like example." + name
}
