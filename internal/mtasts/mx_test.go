package mtasts_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/mtasts"
)

func TestMatchMX(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		// RFC 8461 §4.1 examples.
		{"*.example.com", "mail.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "foo.bar.example.com", false},
		// Exact names, case and trailing dots.
		{"mail.example.com", "mail.example.com", true},
		{"mail.example.com", "MAIL.Example.COM", true},
		{"Mail.Example.Com", "mail.example.com", true},
		{"mail.example.com", "mail.example.com.", true},
		{"mail.example.com.", "mail.example.com", true},
		{"mail.example.com", "mail.example.co", false},
		{"mail.example.com", "xmail.example.com", false},
		{"mail.example.com", "mail.example.com.evil", false},
		{"mail.example.com", "", false},
		{"", "mail.example.com", false},
		// Wildcards match one whole left-most label only.
		{"*.example.com", "MX1.EXAMPLE.COM.", true},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "mail.example.com.evil", false},
		{"*.example.com", "mailexample.com", false},
		{"*.example.com", "*.example.com", true},
		{"*.b.example.com", "a.b.example.com", true},
		{"*.b.example.com", "b.example.com", false},
		{"*.", "a.", false},
		{"*", "a", false},
		// A-labels compare as ASCII; no Unicode case folding (U+212A KELVIN
		// SIGN folds to "k" in Unicode).
		{"mx.xn--bcher-kva.de", "MX.XN--BCHER-KVA.DE", true},
		{"mx.example.com", "mx.example.co\u212a", false},
		{"mx.k.example", "mx.\u212a.example", false},
	} {
		if got := mtasts.MatchMX(tc.pattern, tc.host); got != tc.want {
			t.Errorf("MatchMX(%q, %q) = %v, want %v", tc.pattern, tc.host, got, tc.want)
		}
	}
}

func TestValidMXPattern(t *testing.T) {
	t.Parallel()
	for _, p := range []string{
		"mail.example.com", "*.example.net", "MX1.Example.COM", "mx-1.example.com",
		"1mx.example.com", "mx.xn--bcher-kva.de", "*.mail.example.co.uk",
		strings.Repeat("a", 63) + ".example.com",
		strings.Repeat("abcdefghi.", 24) + "example.com", // 251 characters
	} {
		if err := mtasts.ValidMXPattern(p); err != nil {
			t.Errorf("ValidMXPattern(%q) = %v, want nil", p, err)
		}
	}
	for p, reason := range map[string]string{
		"":                                       "empty",
		"mail.example.com.":                      "dot",
		"*.com":                                  "top-level domain",
		"localhost":                              "fully qualified",
		"192.0.2.1":                              "IP address",
		"[192.0.2.1]":                            "address literal",
		"2001:db8::1":                            "IP address",
		"mail..example.com":                      "empty label",
		".example.com":                           "empty label",
		"*.":                                     "nothing follows",
		"*.*.example.com":                        `"*"`,
		"mx*.example.com":                        `"*"`,
		"mail.*.example.com":                     `"*"`,
		"*example.com":                           `"*"`,
		"-mx.example.com":                        "hyphen",
		"mx-.example.com":                        "hyphen",
		"mail_1.example.com":                     `'_'`,
		"mx.bücher.de":                           "A-label",
		"mail.example.com:25":                    `':'`,
		"mail example.com":                       "space",
		"a.example.com,b.c.com":                  `','`,
		strings.Repeat("a", 64) + ".example.com": "64 characters",
		strings.Repeat("abcdefghi.", 25) + "example.com": "at most 253",
		"mail.example.123": "IP address",
		"https://mta-sts.example.com/.well-known/mta-sts.txt": `':'`,
	} {
		err := mtasts.ValidMXPattern(p)
		var pe *mtasts.PolicyError
		if !errors.As(err, &pe) || !errors.Is(err, mtasts.ErrPolicyMX) {
			t.Errorf("ValidMXPattern(%q) = %v, want a *PolicyError wrapping ErrPolicyMX", p, err)
			continue
		}
		if pe.Key != "mx" || pe.Value != p || !strings.Contains(pe.Reason, reason) {
			t.Errorf("ValidMXPattern(%q) = key %q value %q reason %q; want reason containing %q", p, pe.Key, pe.Value, pe.Reason, reason)
		}
	}
}

// Every pattern ValidMXPattern accepts is accepted by ParsePolicy too, and
// matches the host it names (with the wildcard replaced by a label).
func TestValidPatternsParseAndMatch(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"mail.example.com", "*.example.net", "Mx.Example.Org"} {
		if err := mtasts.ValidMXPattern(p); err != nil {
			t.Fatal(err)
		}
		pol, err := mtasts.ParsePolicy([]byte("version: STSv1\nmode: enforce\nmax_age: 1\nmx: " + p + "\n"))
		if err != nil {
			t.Fatalf("pattern %q: %v", p, err)
		}
		host := strings.Replace(p, "*", "mx7", 1)
		if !pol.Match(host) {
			t.Errorf("pattern %q does not match %q", p, host)
		}
	}
}

// ParsePolicy applies only the ABNF (dnsname.LDH) to others' patterns:
// what ValidMXPattern refuses as a poor choice still parses, what cannot
// be a DNS name does not.
func TestParsePolicyMXTolerance(t *testing.T) {
	t.Parallel()
	parse := func(p string) error {
		_, err := mtasts.ParsePolicy([]byte("version: STSv1\nmode: enforce\nmax_age: 1\nmx: " + p + "\n"))
		return err
	}
	for _, p := range []string{"localhost", "*.com", "192.0.2.1", "MX.Example.COM", "mx.xn--bcher-kva.de"} {
		if err := parse(p); err != nil {
			t.Errorf("ParsePolicy(mx: %s) = %v, want it parsed", p, err)
		}
	}
	for p, reason := range map[string]string{
		"mx.xn--zz.example":                      "not a valid A-label",
		strings.Repeat("a", 64) + ".example.com": "at most 63",
		"mx.example.com.":                        "must not end with a dot",
		"mail_1.example.com":                     `'_'`,
	} {
		if err := parse(p); !errors.Is(err, mtasts.ErrPolicyMX) || !strings.Contains(err.Error(), reason) {
			t.Errorf("ParsePolicy(mx: %s) = %v, want ErrPolicyMX containing %q", p, err, reason)
		}
	}
}
