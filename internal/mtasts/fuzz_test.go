package mtasts_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/mtasts"
)

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20160831085700Z;", // RFC 8461 §3.1 and Appendix A
		"v=STSv1;id=20180907T090909;",
		"v=STSv1  ;\tid=foo; ext=1",
		"v=STSv1; id=a;;",
		"v=STSv1; id=foo; id=bar",
		"id=foo; v=STSv1",
		"v=STSv10; id=a",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := mtasts.ParseRecord(s)
		if err != nil {
			var pe *mtasts.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, mtasts.ErrRecordSyntax) {
				t.Fatalf("error %v is not a *ParseError wrapping ErrRecordSyntax", err)
			}
			if pe.Offset < 0 || pe.Offset > len(s) || pe.Reason == "" {
				t.Fatalf("bad error fields %+v for %q", pe, s)
			}
			_ = err.Error()
			return
		}
		if !strings.HasPrefix(s, "v=STSv1") || !mtasts.ValidID(r.ID) {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		again, err := mtasts.ParseRecord(r.String())
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", s, r.String(), err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip %q: %+v != %+v", s, r, again)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		// RFC 8461 §3.2 and Appendix A.
		"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
		"version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\nmx: mx.backup-example.com\nmax_age: 1296000\n",
		"version: STSv1\nmode: none\nmax_age: 86400",
		"version: STSv1\nmode: enforce\nmode: doubt\nmx: a.example\nmax_age: 0000000001\nx-ext: caf\u00e9 \u2709\n",
		"mode: enforce\nversion: STSv1\t \nmx:mail.example.com\nmax_age: 31557600\n\n",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := mtasts.ParsePolicy(data)
		if err != nil {
			var pe *mtasts.PolicyError
			if !errors.As(err, &pe) || pe.Err == nil || pe.Reason == "" {
				t.Fatalf("error %v is not a complete *PolicyError", err)
			}
			_ = err.Error()
			return
		}
		if p.Version != "STSv1" || !p.Mode.Valid() || p.MaxAge < 0 || p.MaxAge > mtasts.MaxMaxAge ||
			(len(p.MX) == 0 && p.Mode != mtasts.ModeNone) {
			t.Fatalf("accepted an invalid policy %+v", p)
		}
		out := p.Format()
		again, err := mtasts.ParsePolicy(out)
		if err != nil {
			t.Fatalf("Format() = %q does not parse: %v", out, err)
		}
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("round trip: %+v != %+v", p, again)
		}
	})
}

func FuzzMXPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"*.example.com", "mail.example.com"}, // RFC 8461 §4.1
		{"*.example.com", "foo.bar.example.com"},
		{"mail.example.com", "MAIL.EXAMPLE.COM."},
		{"192.0.2.1", "192.0.2.1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		m := mtasts.MatchMX(pattern, host)
		if m != mtasts.MatchMX(strings.ToUpper(pattern), strings.ToLower(host)) && isASCII(pattern+host) {
			t.Fatalf("MatchMX(%q, %q) depends on case", pattern, host)
		}
		if m && !strings.HasPrefix(pattern, "*.") && !strings.EqualFold(strings.TrimSuffix(pattern, "."), strings.TrimSuffix(host, ".")) {
			t.Fatalf("MatchMX(%q, %q) matched different names", pattern, host)
		}
		if mtasts.ValidMXPattern(pattern) != nil {
			return
		}
		// What we let authors publish, others' parsers must accept.
		if _, err := mtasts.ParsePolicy([]byte("version: STSv1\nmode: enforce\nmax_age: 1\nmx: " + pattern + "\n")); err != nil {
			t.Fatalf("valid pattern %q rejected by ParsePolicy: %v", pattern, err)
		}
		if !mtasts.MatchMX(pattern, strings.Replace(pattern, "*", "x", 1)) {
			t.Fatalf("valid pattern %q does not match its own name", pattern)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
