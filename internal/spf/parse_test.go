package spf

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/dnstest"
)

func TestParseValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rec   string
		terms int
		check func(t *testing.T, r *Record)
	}{
		{"v=spf1", 0, nil},
		{"V=SPF1 ", 0, nil},
		{"v=spf1 +mx -all", 2, func(t *testing.T, r *Record) {
			if a := r.All(); a == nil || a.Qualifier != '-' {
				t.Errorf("All = %+v", a)
			}
		}},
		// RFC 7208 §6.1 example.
		{"v=spf1 mx:example.com -all", 2, func(t *testing.T, r *Record) {
			if r.Terms[0].Domain != "example.com" || r.Terms[0].Qualifier != '+' {
				t.Errorf("term = %+v", r.Terms[0])
			}
		}},
		{"v=spf1 redirect=_spf.example.com", 1, func(t *testing.T, r *Record) {
			if r.Redirect() != "_spf.example.com" || r.All() != nil {
				t.Errorf("Redirect = %q", r.Redirect())
			}
		}},
		// RFC 7208 Appendix A examples.
		{"v=spf1 a/24 mx/24 -all", 3, func(t *testing.T, r *Record) {
			if r.Terms[0].Prefix4 != 24 || r.Terms[0].Prefix6 != -1 || r.Terms[0].Domain != "" {
				t.Errorf("a/24 = %+v", r.Terms[0])
			}
		}},
		{"v=spf1 a:offsite.example.com/24//64 ~all", 2, func(t *testing.T, r *Record) {
			tm := r.Terms[0]
			if tm.Domain != "offsite.example.com" || tm.Prefix4 != 24 || tm.Prefix6 != 64 {
				t.Errorf("term = %+v", tm)
			}
		}},
		{"v=spf1 mx//48 -all", 2, func(t *testing.T, r *Record) {
			if r.Terms[0].Prefix4 != -1 || r.Terms[0].Prefix6 != 48 {
				t.Errorf("term = %+v", r.Terms[0])
			}
		}},
		{"v=spf1 ip4:192.0.2.128/28 ip6:2001:db8::/32 ip4:192.0.2.1 ip6:::ffff:192.0.2.1 -all", 5, func(t *testing.T, r *Record) {
			if r.Terms[0].IP != netip.MustParsePrefix("192.0.2.128/28") || r.Terms[0].Prefix4 != 28 {
				t.Errorf("ip4 = %+v", r.Terms[0])
			}
			if r.Terms[2].IP.Bits() != 32 || r.Terms[1].IP.Bits() != 32 || r.Terms[3].IP.Bits() != 128 {
				t.Errorf("prefixes %v %v %v", r.Terms[1].IP, r.Terms[2].IP, r.Terms[3].IP)
			}
		}},
		{"v=spf1 ptr ptr:example.com ?exists:%{ir}.%{l1r+-}._spf.%{d} -all", 4, nil},
		{"v=spf1 include:_spf.google.com ~all", 2, func(t *testing.T, r *Record) {
			if r.Terms[0].Mechanism != "include" || r.Terms[0].Domain != "_spf.google.com" || !r.Terms[0].CostsLookup() {
				t.Errorf("term = %+v", r.Terms[0])
			}
		}},
		// Case-insensitive names; trailing dot; several spaces.
		{"v=spf1  INCLUDE:Example.COM.   MX  ~ALL  ", 3, func(t *testing.T, r *Record) {
			if r.Terms[0].Mechanism != "include" || r.Terms[2].Mechanism != "all" || r.Terms[2].Qualifier != '~' {
				t.Errorf("terms = %+v", r.Terms)
			}
		}},
		// Unknown modifiers are ignored, wherever they are (RFC 7208 §6).
		{"v=spf1 foo=bar moo.cow-far_out=man:dog/cat -all exp=explain.%{d} x=%{c}%{r}%{t}", 5, func(t *testing.T, r *Record) {
			if r.Terms[0].Modifier != "foo" || r.Terms[0].Value != "bar" || r.Exp() != "explain.%{d}" {
				t.Errorf("terms = %+v", r.Terms)
			}
		}},
		// Macros: escapes, upper case, delimiters, domain ending in a macro.
		{"v=spf1 exists:%{S}%%%_%-.%{L2r-+,/_=}.%{o}.%{h}.%{v}.%{p}.x.example -all", 2, nil},
		{"v=spf1 include:%{d}", 1, nil},
		{"v=spf1 exists:foo%%", 1, nil},
		{"v=spf1 a:1-2.example.1-2", 1, nil},
		{"v=spf1 a/0 ip4:0.0.0.0/0 ip6:::/0", 3, nil},
	} {
		r, err := Parse(tc.rec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.rec, err)
			continue
		}
		if len(r.Terms) != tc.terms {
			t.Errorf("Parse(%q): %d terms, want %d", tc.rec, len(r.Terms), tc.terms)
			continue
		}
		if tc.check != nil {
			tc.check(t, r)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rec, term, reason string
		pos               int
	}{
		{"v=spf10 -all", "v=spf10", "v=spf1", 0},
		{" v=spf1 -all", "", "v=spf1", 0},
		{"spf1 -all", "spf1", "v=spf1", 0},
		{"v=spf1 all/32", "all/32", "no argument", 7},
		{"v=spf1 -all:foo", "-all:foo", "no argument", 7},
		{"v=spf1 include", "include", "needs", 7},
		{"v=spf1 include:", "include:", "needs", 7},
		{"v=spf1 exists", "exists", "needs", 7},
		{"v=spf1 foo:bar", "foo:bar", "unknown mechanism", 7},
		{"v=spf1 mx -all foo", "foo", "unknown mechanism", 15},
		{"v=spf1 *all", "*all", "unknown mechanism", 7},
		{"v=spf1 ip4:192.0.2.300", "ip4:192.0.2.300", "not an IP", 7},
		{"v=spf1 ip4:192.0.2.1/33", "ip4:192.0.2.1/33", "0-32", 7},
		{"v=spf1 ip4:192.0.2.1/024", "ip4:192.0.2.1/024", "leading zero", 7},
		{"v=spf1 ip4:2001:db8::1", "ip4:2001:db8::1", "not an IPv4", 7},
		{"v=spf1 ip6:192.0.2.1", "ip6:192.0.2.1", "not an IPv6", 7},
		{"v=spf1 ip6:2001:db8::/129", "ip6:2001:db8::/129", "0-128", 7},
		{"v=spf1 ip6:fe80::1%eth0", "ip6:fe80::1%eth0", "not an IP", 7},
		{"v=spf1 ip4", "ip4", "needs", 7},
		{"v=spf1 ip4:192.0.2.0/", "ip4:192.0.2.0/", "prefix", 7},
		{"v=spf1 a/33", "a/33", "0-32", 7},
		{"v=spf1 mx//129", "mx//129", "0-128", 7},
		{"v=spf1 a:example.com/", "a:example.com/", "top label", 7},
		{"v=spf1 a:", "a:", "expected", 7},
		{"v=spf1 ptr/24", "ptr/24", "only", 7},
		// domain-end must be "." toplabel or a macro (RFC 7208 §7.1).
		{"v=spf1 a:museum", "a:museum", "no dot", 7},
		{"v=spf1 a:museum.", "a:museum.", "no dot", 7},
		{"v=spf1 include:example.123", "include:example.123", "top label", 7},
		{"v=spf1 include:example.-com", "include:example.-com", "top label", 7},
		{"v=spf1 include:foo..", "include:foo..", "top label", 7},
		// Macro syntax (RFC 7208 §7.1, §7.3).
		{"v=spf1 -exists:%(ir).sbl.example.org", "-exists:%(ir).sbl.example.org", "must be", 7},
		{"v=spf1 exists:%{x}.example.org", "exists:%{x}.example.org", "unknown macro letter", 7},
		{"v=spf1 exists:%{d0}.example.org", "exists:%{d0}.example.org", "nonzero", 7},
		{"v=spf1 exists:%{ir.example.org", "exists:%{ir.example.org", "unclosed", 7},
		{"v=spf1 exists:%{i;}.example.org", "exists:%{i;}.example.org", "delimiter", 7},
		{"v=spf1 exists:%{}.example.org", "exists:%{}.example.org", "no macro letter", 7},
		{"v=spf1 include:%{r}.example.com", "include:%{r}.example.com", "explanation", 7},
		{"v=spf1 exists:foo.example.org%", "exists:foo.example.org%", "at the end", 7},
		{"v=spf1 foo=%", "foo=%", "at the end", 7},
		{"v=spf1 a:ex\tample.com", "a:ex\tample.com", "not allowed", 7},
		// Modifiers (RFC 7208 §6).
		{"v=spf1 redirect=a.example redirect=b.example", "redirect=b.example", "more than once", 26},
		{"v=spf1 exp=a.example EXP=b.example", "EXP=b.example", "more than once", 21},
		{"v=spf1 redirect=", "redirect=", "needs a domain", 7},
		{"v=spf1 redirect=foo", "redirect=foo", "no dot", 7},
		{"v=spf1 1foo=bar", "1foo=bar", "unknown mechanism", 7},
	} {
		_, err := Parse(tc.rec)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %v, want a *ParseError", tc.rec, err)
			continue
		}
		if pe.Term != tc.term || pe.Pos != tc.pos || !strings.Contains(pe.Reason, tc.reason) {
			t.Errorf("Parse(%q): term %q pos %d reason %q; want term %q pos %d reason containing %q",
				tc.rec, pe.Term, pe.Pos, pe.Reason, tc.term, tc.pos, tc.reason)
		}
		if tc.term != "" && !strings.Contains(err.Error(), strconv.Quote(tc.term)) {
			t.Errorf("error %q does not name the term", err)
		}
	}
}

// RFC 7208 §7.4 expansion examples.
func TestMacroExpansion(t *testing.T) {
	t.Parallel()
	c4 := &MacroContext{Sender: "strong-bad@email.example.com", IP: netip.MustParseAddr("192.0.2.3")}
	c6 := &MacroContext{Sender: "strong-bad@email.example.com", IP: netip.MustParseAddr("2001:db8::cb01")}
	env := func(c *MacroContext) macroEnv { return macroEnv{domain: "email.example.com", ctx: c} }
	for _, tc := range []struct {
		spec, want string
		ctx        *MacroContext
	}{
		{"%{s}", "strong-bad@email.example.com", c4},
		{"%{o}", "email.example.com", c4},
		{"%{d}", "email.example.com", c4},
		{"%{d4}", "email.example.com", c4},
		{"%{d3}", "email.example.com", c4},
		{"%{d2}", "example.com", c4},
		{"%{d1}", "com", c4},
		{"%{dr}", "com.example.email", c4},
		{"%{d2r}", "example.email", c4},
		{"%{l}", "strong-bad", c4},
		{"%{l-}", "strong.bad", c4},
		{"%{lr}", "strong-bad", c4},
		{"%{lr-}", "bad.strong", c4},
		{"%{l1r-}", "strong", c4},
		{"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com", c4},
		{"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com", c4},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com", c4},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com", c4},
		{"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net", c4},
		{"%{ir}.%{v}._spf.%{d2}", "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com", c6},
		// Upper case is URL-escaped (RFC 7208 §7.3); escapes.
		{"%{S}.x.example", "strong-bad%40email.example.com.x.example", c4},
		{"a%%b%_c%-d.example", "a%b c%20d.example", nil},
		// Only %{d} without a sender context.
		{"%{d}._spf.example.net", "email.example.com._spf.example.net", nil},
		// Sender without local part: postmaster (RFC 7208 §4.3).
		{"%{l}.%{o}.example", "postmaster.helo.example.example", &MacroContext{Sender: "helo.example"}},
	} {
		got, missing, ok := expandDomainSpec(tc.spec, env(tc.ctx))
		if !ok || got != tc.want {
			t.Errorf("expand %q = %q, %v (missing %q); want %q", tc.spec, got, ok, missing, tc.want)
		}
	}
	for _, tc := range []struct{ spec, missing string }{
		{"%{i}.example", "%{i}"},
		{"%{l}.example", "%{l}"},
		{"%{h}.example", "%{h}"},
		{"%{p}.example", "%{p}"},
	} {
		if _, missing, ok := expandDomainSpec(tc.spec, env(nil)); ok || missing != tc.missing {
			t.Errorf("expand %q without context: ok %v missing %q", tc.spec, ok, missing)
		}
	}
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + "." + "%{d}"
	got, _, _ := expandDomainSpec(long, env(nil))
	if len(got) > 253 || !strings.HasPrefix(got, strings.Repeat("b", 60)) {
		t.Errorf("truncation: %d %q", len(got), got)
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, `
one.example.   TXT "v=spf1 -all"
one.example.   TXT "other"
two.example.   TXT "v=spf1 -all"
two.example.   TXT "V=SPF1 +all"
ten.example.   TXT "v=spf10 -all"
split.example. TXT "v=spf1 ip4:192.0.2.1" " -all"
nodata.example. A 192.0.2.1
`, nil)
	r := s.Resolver()
	ctx := context.Background()
	txt, all, err := Lookup(ctx, r, "one.example")
	if err != nil || txt != "v=spf1 -all" || len(all) != 2 {
		t.Errorf("one: %q %q %v", txt, all, err)
	}
	if _, all, err := Lookup(ctx, r, "two.example"); !errors.Is(err, ErrMultipleRecords) || len(all) != 2 {
		t.Errorf("two: %v %v", all, err)
	}
	if _, all, err := Lookup(ctx, r, "ten.example"); !errors.Is(err, ErrNoRecord) || len(all) != 1 {
		t.Errorf("ten: %v %v", all, err)
	}
	if txt, _, err := Lookup(ctx, r, "split.example"); err != nil || txt != "v=spf1 ip4:192.0.2.1 -all" {
		t.Errorf("split: %q %v", txt, err)
	}
	for _, d := range []string{"nodata.example", "nxdomain.example"} {
		if _, _, err := Lookup(ctx, r, d); !errors.Is(err, ErrNoRecord) || !strings.Contains(err.Error(), d) {
			t.Errorf("%s: %v", d, err)
		}
	}
}

func TestIsTooLong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n           int
		split, risk bool
	}{{255, false, false}, {256, true, false}, {450, true, false}, {451, true, true}} {
		got := IsTooLong(strings.Repeat("x", tc.n))
		if got.Bytes != tc.n || got.NeedsSplit != tc.split || got.RisksUDP != tc.risk {
			t.Errorf("IsTooLong(%d) = %+v", tc.n, got)
		}
	}
	if n := AnswerSize("example.com", []string{"v=spf1 -all", "other"}); n != len("example.com")+len("v=spf1 -all")+len("other") {
		t.Errorf("AnswerSize = %d", n)
	}
}

func FuzzParseSPF(f *testing.F) {
	for _, s := range []string{
		"v=spf1 +mx -all",
		"v=spf1 mx:example.com -all",
		"v=spf1 redirect=_spf.example.com",
		"v=spf1 a/24 mx/24 -all",
		"v=spf1 a:offsite.example.com/24//64 ~all",
		"v=spf1 ip4:192.0.2.128/28 ip6:2001:db8::/32 -all",
		"v=spf1 -exists:%{ir}.sbl.example.org",
		"v=spf1 mx exists:%{l}._spf_verify.%{d} -all",
		"v=spf1 mx redirect=%{l1r+}._at_.%{o}._spf.%{d}",
		"v=spf1 mx ?exists:%{ir}.whitelist.example.org -all",
		"v=spf1 exists:%{S}%%%_%-.%{L2r-+,/_=}.x.example exp=%{d}.x moo=%{c}",
		"v=spf1 ptr:example.com include:%{d}",
		"v=spf1 all/32",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q): untyped error %v", s, err)
			}
			if pe.Pos < 0 || pe.Pos > len(s) || !strings.Contains(s[pe.Pos:], pe.Term) {
				t.Fatalf("Parse(%q): term %q not at %d", s, pe.Term, pe.Pos)
			}
			return
		}
		// Every term is a substring of the record, and re-joining the
		// terms gives a record that parses to the same terms.
		var b strings.Builder
		b.WriteString("v=spf1")
		for _, tm := range r.Terms {
			if tm.Raw == "" || strings.Contains(tm.Raw, " ") || !strings.Contains(s, tm.Raw) {
				t.Fatalf("Parse(%q): bad raw term %q", s, tm.Raw)
			}
			if (tm.Mechanism == "") == (tm.Modifier == "") {
				t.Fatalf("Parse(%q): term %q is neither or both mechanism and modifier", s, tm.Raw)
			}
			b.WriteString(" " + tm.Raw)
		}
		r2, err := Parse(b.String())
		if err != nil || len(r2.Terms) != len(r.Terms) {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		for _, tm := range r.Terms {
			if tm.Domain != "" {
				expandDomainSpec(tm.Domain, macroEnv{domain: "example.com", ctx: &MacroContext{Sender: "a@b.example", IP: netip.MustParseAddr("2001:db8::1"), Helo: "h.example"}})
			}
		}
	})
}
