package dnsname

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

var (
	label63 = strings.Repeat("a", 63)
	label64 = strings.Repeat("a", 64)
	// name253 is 253 characters: three 63-character labels, then 61.
	name253 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
	name254 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 62)
)

func TestLengthFixtures(t *testing.T) {
	t.Parallel()
	if len(name253) != 253 || len(name254) != 254 || len(label64) != 64 {
		t.Fatal("fixture lengths are off")
	}
}

// TestParse: every level, valid and invalid input. want is the output;
// reason, when set, a substring of the error's reason.
func TestParse(t *testing.T) {
	t.Parallel()
	all := []Level{LDH, Host, Owner, Domain}
	tests := []struct {
		in     string
		levels []Level
		want   string
		reason string
	}{
		// Case, trailing dot, surrounding space.
		{"Example.COM", all, "example.com", ""},
		{"example.com.", all, "example.com", ""},
		{" \tmail.Example.com. \n", all, "mail.example.com", ""},
		{"example.com..", all, "", "empty label"},
		{"a..b", all, "", "empty label"},
		{".a", all, "", "empty label"},
		{".", all, "", "empty name"},
		{"", all, "", "empty name"},
		{"   ", all, "", "empty name"},
		{"a b.com", all, "", `label "a b" has a space`},
		{"a\tb.com", all, "", "has a tab"},
		{"a\x00b.com", all, "", "control character U+0000"},

		// IDN: U-labels mapped to A-labels, A-labels validated.
		{"ÜBER.example", all, "xn--ber-goa.example", ""},
		{"Bücher.Example.", all, "xn--bcher-kva.example", ""},
		{"xn--ber-goa.example", all, "xn--ber-goa.example", ""},
		{"XN--BCHER-KVA.de", all, "xn--bcher-kva.de", ""},
		{"*.Exämple.com", []Level{Host}, "", `'*'`},
		{"ｅｘａｍｐｌｅ.com", all, "example.com", ""},              // full-width letters map to ASCII
		{"bücher。example", all, "xn--bcher-kva.example", ""}, // ideographic full stop
		{"xn--zz.example", all, "", `label "xn--zz" begins with "xn--" but is not a valid A-label`},
		{"xn--abc.example", all, "", "not a valid A-label"}, // decodes to ASCII-free garbage
		{"xn--.example", all, "", "hyphen"},
		{"xn--Ber-goa.example", all, "xn--ber-goa.example", ""},
		{"bü--cher.example", all, "", "third and fourth positions"},
		{"a\u200db.example", all, "", "U+200D"},
		{"\u0301a.example", all, "", "not a valid internationalized label"},
		{"-bücher.example", all, "", "hyphen"},
		{"bü_cher.example", []Level{Host, Domain}, "", `label "bü_cher" has the character '_'`},
		{"bü_cher.example", []Level{Owner}, "", "mixes the character '_' with non-ASCII"},

		// Hyphens.
		{"-a.example", all, "", `label "-a" begins or ends with a hyphen`},
		{"a-.example", all, "", "begins or ends with a hyphen"},
		{"a-b.example", all, "a-b.example", ""},
		{"r3---sn-abc.example", all, "r3---sn-abc.example", ""}, // R-LDH labels that are not xn-- exist
		{"1mx.example", all, "1mx.example", ""},

		// Underscores: only Owner.
		{"a_b.example", []Level{LDH, Host, Domain}, "", `label "a_b" has the character '_' (host names are letters, digits and hyphens, RFC 1123 §2.1)`},
		{"a_b.example", []Level{Owner}, "a_b.example", ""},
		{"_dmarc.Example.com", []Level{Owner}, "_dmarc.example.com", ""},
		{"Sel1._domainkey.example.com", []Level{Owner}, "sel1._domainkey.example.com", ""},
		{"x._report._dmarc.y.example", []Level{Owner}, "x._report._dmarc.y.example", ""},
		{"_", []Level{Owner}, "_", ""},
		{"_-.example", []Level{Owner}, "", "hyphen"},

		// Lengths: labels 63, names 253 (text form, no trailing dot).
		{label63 + ".example", all, label63 + ".example", ""},
		{label64 + ".example", all, "", `is 64 characters long; at most 63 are allowed (RFC 1035 §2.3.4)`},
		{name253, all, name253, ""},
		{name253 + ".", all, name253, ""},
		{name254, all, "", "name is 254 characters long; at most 253 are allowed"},
		{strings.Repeat("ü", 60) + ".example", all, "", "at most 63"}, // the A-label is what counts

		// Label count, numeric top-level labels, IP addresses.
		{"localhost", []Level{LDH, Owner}, "localhost", ""},
		{"localhost", []Level{Host}, "", "not a fully qualified host name"},
		{"localhost", []Level{Domain}, "", "not a fully qualified domain name"},
		{"1.2.3.4", []Level{Host}, "", "is an IP address, not a host name"},
		{"1.2.3.4", []Level{Domain}, "", "is an IP address, not a domain name"},
		{"1.2.3.4", []Level{LDH, Owner}, "1.2.3.4", ""},
		{"2001:db8::1", []Level{Host, Domain}, "", "is an IP address"},
		{"[192.0.2.1]", all, "", "is an address literal"},
		{"01.2.3.4", []Level{Host}, "", `top-level label "4" is all digits`},
		{"example.123", []Level{Host, Domain}, "", `the top-level label "123" is all digits, so the name looks like an IP address (RFC 3696 §2)`},
		{"example.123", []Level{LDH, Owner}, "example.123", ""},
		{"123.example", all, "123.example", ""},

		// Public suffixes: Domain only.
		{"com", []Level{Domain}, "", "is a public suffix"},
		{"co.uk", []Level{Domain}, "", "is a public suffix"},
		{"CO.UK.", []Level{Domain}, "", "like example.co.uk"},
		{"github.io", []Level{Domain}, "", "is a public suffix"}, // private section
		{"co.uk", []Level{Host, Owner, LDH}, "co.uk", ""},
		{"example.com", []Level{Domain}, "example.com", ""},
		{"mail.example.com", []Level{Domain}, "mail.example.com", ""},
		{"example.co.uk", []Level{Domain}, "example.co.uk", ""},
		{"user.github.io", []Level{Domain}, "user.github.io", ""},
		{"example.test", []Level{Domain}, "example.test", ""}, // not in the list
		{"demo.moat.test", []Level{Domain}, "demo.moat.test", ""},
		{"sts.moat.test", []Level{Domain}, "sts.moat.test", ""},
		{"example", []Level{Domain}, "", "not a fully qualified"},

		// Other characters.
		{"mail.example.com:25", all, "", `label "com:25" has the character ':'`},
		{"x@example.com", all, "", `'@'`},
		{"good.test/evil", all, "", `'/'`},
		{"*.example.com", all, "", `label "*" has the character '*'`},
	}
	for _, tc := range tests {
		for _, l := range tc.levels {
			t.Run(fmt.Sprintf("%v/%q", l, tc.in), func(t *testing.T) {
				got, err := Parse(tc.in, l)
				if tc.reason == "" {
					if err != nil || got != tc.want {
						t.Fatalf("Parse = %q, %v; want %q", got, err, tc.want)
					}
					if err := Check(got, l); err != nil {
						t.Errorf("Check(Parse output) = %v", err)
					}
					return
				}
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse = %q, %v; want an *Error wrapping ErrInvalid", got, err)
				}
				if e.Input != tc.in || !strings.Contains(e.Reason, tc.reason) || got != "" {
					t.Errorf("Parse = %q, error input %q reason %q; want reason containing %q", got, e.Input, e.Reason, tc.reason)
				}
				if !strings.HasPrefix(err.Error(), fmt.Sprintf("invalid domain name %q: ", tc.in)) {
					t.Errorf("message %q does not name the input", err)
				}
				if strings.Contains(err.Error(), "idna:") {
					t.Errorf("message %q shows library internals", err)
				}
			})
		}
	}
}

// TestMessage pins the complete text of one message.
func TestMessage(t *testing.T) {
	t.Parallel()
	_, err := Parse("a_b.example", Domain)
	const want = `invalid domain name "a_b.example": label "a_b" has the character '_' (host names are letters, digits and hyphens, RFC 1123 §2.1)`
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestCheck: protocol text is taken exactly as written.
func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		l      Level
		reason string
	}{
		{"mail.example.com", Host, ""},
		{"MAIL.Example.COM", Host, ""},
		{"xn--bcher-kva.example", Host, ""},
		{"_smtp._tls.example.com", Owner, ""},
		{"mail.example.com.", Host, "must not end with a dot"},
		{"mail.example.com..", Host, "empty label"},
		{".", Host, "empty label"},
		{" mail.example.com", Host, "has a space"},
		{"bücher.example", Host, `label "bücher" is not ASCII; write it as the A-label "xn--bcher-kva"`},
		{"a\u200db.example", Host, "is not ASCII; write it as an A-label"},
		{"xn--zz.example", Host, "not a valid A-label"},
		{"a_b.example", Host, `'_'`},
		{"co.uk", Domain, "public suffix"},
		{"", LDH, "empty name"},
	} {
		err := Check(tc.in, tc.l)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("Check(%q, %v) = %v, want nil", tc.in, tc.l, err)
		case tc.reason != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.reason)):
			t.Errorf("Check(%q, %v) = %v, want an error containing %q", tc.in, tc.l, err, tc.reason)
		}
	}
}

// TestSameReason: Parse and Check agree on names that need no
// normalization, and the message depends only on the input.
func TestSameReason(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"a_b.example", "a..b", "-a.example", label64 + ".example", name254, "1.2.3.4", "co.uk", "xn--zz.example"} {
		_, perr := Parse(in, Domain)
		cerr := Check(in, Domain)
		if perr == nil || cerr == nil || perr.Error() != cerr.Error() {
			t.Errorf("%q: Parse error %v, Check error %v; want the same", in, perr, cerr)
		}
	}
}

func TestPatterns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, reason string
	}{
		{"mx.example.com", "mx.example.com", ""},
		{" *.Mail.Exämple.com. ", "*.mail.xn--exmple-cua.com", ""},
		{"*.example.net", "*.example.net", ""},
		{"*.com", "", "wildcard over a whole top-level domain"},
		{"*.", "", "nothing follows the wildcard"},
		{"*", "", "nothing follows the wildcard"},
		{"*.*", "", `"*" is only allowed`},
		{"**", "", `"*" is only allowed as the complete left-most label`},
		{"*.*.example.com", "", `"*" is only allowed`},
		{"mx.*.example.com", "", `"*" is only allowed`},
		{"*example.com", "", `"*" is only allowed`},
		{"*.a_b.example", "", `label "a_b" has the character '_'`},
		{"192.0.2.1", "", "is an IP address"},
		{"*.192.0.2.1", "", "is an IP address"},
		{"*.mx.example.123", "", "all digits"},
		{"[192.0.2.1]", "", "address literal"},
		{"localhost", "", "not a fully qualified host name"},
	} {
		got, err := ParsePattern(tc.in, Host)
		if tc.reason == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParsePattern(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if err := CheckPattern(got, Host); err != nil {
				t.Errorf("CheckPattern(%q) = %v", got, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Input != tc.in || !strings.Contains(e.Reason, tc.reason) {
			t.Errorf("ParsePattern(%q) = %q, %v; want an *Error containing %q", tc.in, got, err, tc.reason)
		}
	}
	// LDH: the bare RFC 5321 syntax, as others may publish it.
	for _, p := range []string{"localhost", "*.com", "192.0.2.1", "MX.Example.COM"} {
		if err := CheckPattern(p, LDH); err != nil {
			t.Errorf("CheckPattern(%q, LDH) = %v", p, err)
		}
	}
	for _, p := range []string{"mx.example.com.", "mx.bücher.de", "mail_1.example.com", "*.", "a.*.b"} {
		if err := CheckPattern(p, LDH); err == nil {
			t.Errorf("CheckPattern(%q, LDH) = nil, want an error", p)
		}
	}
}

func TestCheckLength(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"example.com", "a", "a b.c@d", label63 + ".x", name253, "%{l}.example"} {
		if err := CheckLength(ok); err != nil {
			t.Errorf("CheckLength(%q) = %v", ok, err)
		}
	}
	for in, reason := range map[string]string{
		"":             "empty name",
		"a..b":         "empty label",
		"example.com.": "must not end with a dot",
		".":            "empty label",
		label64 + ".x": "at most 63",
		name254:        "at most 253",
	} {
		if err := CheckLength(in); err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), reason) {
			t.Errorf("CheckLength(%q) = %v, want an error containing %q", in, err, reason)
		}
	}
}

func TestOrgDomain(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"example.com":           "example.com",
		"a.b.example.com.":      "example.com",
		"Mail.Example.Co.UK":    "example.co.uk",
		"co.uk":                 "co.uk",
		"com":                   "com",
		"localhost":             "localhost",
		"foo.bar.example":       "bar.example",
		"user.github.io":        "user.github.io", // private section of the list
		"x.user.blogspot.com":   "user.blogspot.com",
		"xn--bcher-kva.example": "xn--bcher-kva.example",
		"a.b.demo.moat.test":    "moat.test",
		"a..example.com":        "a..example.com",
		"":                      "",
	} {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsNotFound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("no such host"), false},
		{&net.DNSError{Err: "server misbehaving", Name: "x.example", IsTemporary: true}, false},
		{&net.DNSError{Err: "no such host", Name: "x.example", IsNotFound: true}, true},
		{fmt.Errorf("lookup: %w", &net.DNSError{IsNotFound: true}), true},
		{NotFound("x.example"), true},
	} {
		if got := IsNotFound(tc.err); got != tc.want {
			t.Errorf("IsNotFound(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestLevelString(t *testing.T) {
	t.Parallel()
	for l, want := range map[Level]string{LDH: "LDH", Host: "Host", Owner: "Owner", Domain: "Domain", 0: "Level(0)"} {
		if got := l.String(); got != want {
			t.Errorf("Level(%d).String() = %q, want %q", int(l), got, want)
		}
	}
}
