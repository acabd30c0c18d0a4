package mtasts

import (
	"errors"
	"strconv"
	"strings"

	"github.com/moatmail/moat/internal/dnsname"
)

// MatchMX reports whether the MX host name host matches the policy mx
// pattern (RFC 8461 §4.1). Matching is ASCII case-insensitive, a trailing
// dot on either side is ignored, and a "*." pattern matches exactly one
// left-most label: "*.example.com" matches "mx.example.com" but neither
// "example.com" nor "a.b.example.com". Both arguments are compared as
// A-labels; no IDNA conversion is done. The pattern is not validated: an
// invalid pattern simply fails to match anything sensible.
func MatchMX(pattern, host string) bool {
	pattern = strings.TrimSuffix(pattern, ".")
	host = strings.TrimSuffix(host, ".")
	if pattern == "" || host == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		// RFC 8461 §4.1: the wildcard may only match the entire left-most
		// label of the presented identifier.
		i := strings.IndexByte(host, '.')
		if i <= 0 {
			return false
		}
		return asciiEqualFold(host[i+1:], rest)
	}
	return asciiEqualFold(pattern, host)
}

// ValidMXPattern checks an mx pattern that a policy author wants to publish.
// It is stricter than what ParsePolicy accepts from others (the RFC 8461
// §3.2 ABNF, ["*."] Domain), because a pattern that can never match a real
// MX host is a mistake worth reporting. The rules are those of
// dnsname.CheckPattern at the dnsname.Host level:
//
//   - The pattern is a host name, or "*." followed by a host name (§3.2);
//     the wildcard is only allowed as the complete left-most label.
//   - Labels are 1 to 63 letters, digits and hyphens, not beginning or ending
//     with a hyphen (RFC 5321 Domain, RFC 1123 §2.1); the name is at most
//     253 characters (RFC 1035 §2.3.4); a label beginning with "xn--" is a
//     valid A-label.
//   - The name has at least two labels after any wildcard: "localhost" is
//     not an MX host and "*.com" would accept any host in a top-level
//     domain (see also §10.4 on weak policy constraints).
//   - IP addresses are rejected: an MX record names a host, and a name whose
//     last label is all digits is not a host name (RFC 3696 §2).
//   - A trailing dot is rejected: the ABNF does not allow it. Callers that
//     accept user input use dnsname.ParsePattern first.
//   - U-labels are rejected: §3.2 requires the Punycode A-label.
//
// The error is a *PolicyError with Key "mx" wrapping ErrPolicyMX.
func ValidMXPattern(pattern string) error {
	if reason := mxPatternReason(pattern, true); reason != "" {
		return &PolicyError{Key: "mx", Value: pattern, Reason: reason, Err: ErrPolicyMX}
	}
	return nil
}

// mxPatternReason returns why pattern is not a valid mx pattern, or "".
// With strict false it applies only the ABNF of RFC 8461 §3.2,
// sts-policy-mx-value = ["*."] Domain (dnsname.LDH: letters, digits and
// hyphens, any number of labels, within the DNS length limits).
func mxPatternReason(pattern string, strict bool) string {
	level := dnsname.LDH
	if strict {
		level = dnsname.Host
	}
	err := dnsname.CheckPattern(pattern, level)
	if err == nil {
		return ""
	}
	var de *dnsname.Error
	if errors.As(err, &de) {
		return de.Reason
	}
	return err.Error()
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// describeByte names a byte for an error message: printable ASCII quoted,
// anything else as a hex escape.
func describeByte(c byte) string {
	if c > 0x20 && c < 0x7f {
		return strconv.Quote(string(rune(c)))
	}
	switch c {
	case ' ':
		return "a space"
	case '\t':
		return "a tab"
	case '\r':
		return "a carriage return"
	case '\n':
		return "a line feed"
	}
	return "byte 0x" + strconv.FormatUint(uint64(c)|0x100, 16)[1:]
}

func quote(s string) string { return strconv.Quote(s) }

func itoa(n int) string { return strconv.Itoa(n) }
