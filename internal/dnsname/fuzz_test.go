package dnsname

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks the invariants of Parse at every level: it does not
// panic; on success the output is lower-case ASCII without a trailing dot,
// within the length limits, accepted by Check, and parses to itself; on
// failure the error is an *Error naming the input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"example.com", "Example.COM.", "ÜBER.example", "xn--ber-goa.example", "xn--zz.example",
		"a_b.example", "_dmarc.example.com", "co.uk", "com", "1.2.3.4", "example.123", "::1",
		"a..b", ".a", "a.b..", " a.b ", "-a.b", "a-.b", "bü--cher.example", "ｅｘａｍｐｌｅ。com",
		"\u00ad.example", "a\u200db.example", "*.example.com", "[192.0.2.1]", "",
		strings.Repeat("a", 63) + ".example", strings.Repeat("a", 64) + ".example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range []Level{LDH, Host, Owner, Domain} {
			out, err := Parse(s, l)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || e.Input != s || e.Reason == "" || out != "" {
					t.Fatalf("Parse(%q, %v) = %q, %#v: want an *Error naming the input", s, l, out, err)
				}
				continue
			}
			if out == "" || strings.HasSuffix(out, ".") {
				t.Fatalf("Parse(%q, %v) = %q: empty or trailing dot", s, l, out)
			}
			for i := 0; i < len(out); i++ {
				if c := out[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
					t.Fatalf("Parse(%q, %v) = %q: not lower-case ASCII", s, l, out)
				}
			}
			if len(out) > MaxNameLen {
				t.Fatalf("Parse(%q, %v) = %q: %d characters", s, l, out, len(out))
			}
			for _, label := range strings.Split(out, ".") {
				if label == "" || len(label) > MaxLabelLen {
					t.Fatalf("Parse(%q, %v) = %q: label %q", s, l, out, label)
				}
			}
			if again, err := Parse(out, l); err != nil || again != out {
				t.Fatalf("Parse(%q, %v) = %q, but Parse(%q) = %q, %v", s, l, out, out, again, err)
			}
			if err := Check(out, l); err != nil {
				t.Fatalf("Parse(%q, %v) = %q, but Check refuses it: %v", s, l, out, err)
			}
			if err := CheckLength(out); err != nil {
				t.Fatalf("Parse(%q, %v) = %q, but CheckLength refuses it: %v", s, l, out, err)
			}
		}
		// Check accepts exactly the names Parse leaves as they are (up to
		// ASCII case).
		for _, l := range []Level{LDH, Host, Owner, Domain} {
			out, perr := Parse(s, l)
			cerr := Check(s, l)
			if cerr == nil && (perr != nil || out != strings.ToLower(s)) {
				t.Fatalf("Check(%q, %v) accepts, but Parse = %q, %v", s, l, out, perr)
			}
		}
		if p, err := ParsePattern(s, Host); err == nil {
			if again, err := ParsePattern(p, Host); err != nil || again != p || CheckPattern(p, Host) != nil {
				t.Fatalf("ParsePattern(%q) = %q, not a fixed point: %q, %v", s, p, again, err)
			}
		}
	})
}
