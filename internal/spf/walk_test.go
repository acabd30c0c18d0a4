package spf

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnstest"
)

func walk(t *testing.T, zone, domain string, opts WalkOpts) (*Result, *dnstest.Server) {
	t.Helper()
	s := dnstest.Start(t, zone, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Walk(ctx, s.Resolver(), domain, opts), s
}

func problemsWith(res *Result, target error) []Problem {
	var out []Problem
	for _, p := range res.Problems {
		if errors.Is(p.Err, target) {
			out = append(out, p)
		}
	}
	return out
}

// overLimitZone: mx(1) a(2) include:a(3)[a1(4) a2(5)[a:host(6)]]
// include:b(7)[b1(8) b2(9) b3(10)] include:c(11)[redirect(12)].
const overLimitZone = `
example.com.      TXT "v=spf1 mx a include:a.example.net include:b.example.net include:c.example.net -all"
example.com.      MX 10 mail.example.com.
example.com.      A 192.0.2.10
mail.example.com. A 192.0.2.11
a.example.net.    TXT "v=spf1 include:a1.example.net include:a2.example.net ip4:192.0.2.0/24 ~all"
a1.example.net.   TXT "v=spf1 ip4:192.0.2.1 -all"
a2.example.net.   TXT "v=spf1 a:host.example.net -all"
host.example.net. A 192.0.2.5
b.example.net.    TXT "v=spf1 include:b1.example.net include:b2.example.net include:b3.example.net ?all"
b1.example.net.   TXT "v=spf1 ip4:198.51.100.0/24 -all"
b2.example.net.   TXT "v=spf1 ip6:2001:db8::/32 -all"
b3.example.net.   TXT "v=spf1 ip4:203.0.113.7 -all"
c.example.net.    TXT "v=spf1 ip4:203.0.113.8 redirect=c1.example.net"
c1.example.net.   TXT "v=spf1 -all"
`

func TestWalkOverLimit(t *testing.T) {
	t.Parallel()
	res, _ := walk(t, overLimitZone, "example.com", WalkOpts{})
	if res.TotalLookups != 12 {
		t.Errorf("TotalLookups = %d, want 12", res.TotalLookups)
	}
	if res.ExceededAt != "include:c.example.net (lookup 11)" || res.ExceededIn != "example.com" {
		t.Errorf("ExceededAt = %q in %q", res.ExceededAt, res.ExceededIn)
	}
	if got := problemsWith(res, ErrTooManyLookups); len(got) != 1 || got[0].Result != "permerror" {
		t.Errorf("lookup-limit problems = %v", got)
	}
	if res.TotalVoid != 0 || res.VoidExceededAt != "" {
		t.Errorf("void = %d %q", res.TotalVoid, res.VoidExceededAt)
	}
	root := res.Tree
	if root.Lookups != 5 || root.Total != 12 || root.Cumulative != 12 {
		t.Errorf("root Lookups/Total/Cumulative = %d/%d/%d, want 5/12/12", root.Lookups, root.Total, root.Cumulative)
	}
	if len(root.Children) != 3 || root.Children[1].Via != "include:b.example.net" || root.Children[1].Cumulative != 10 {
		t.Errorf("children = %+v", root.Children)
	}
	want := []Cost{
		{"include:b.example.net", 4},
		{"include:a.example.net", 4},
		{"include:c.example.net", 2},
	}
	// Ties keep record order: a before b.
	want[0], want[1] = want[1], want[0]
	if got := root.CostByInclude(); !slices.Equal(got, want) {
		t.Errorf("CostByInclude = %v, want %v", got, want)
	}
	wantTree := `example.com  [12 lookups: 5 here, 7 through includes; 0 void lookups here]
   1  mx  [1 MX name]
   2  a
   3  include:a.example.net  [costs 4, running total 6]
   4    include:a1.example.net  [costs 1, running total 4]
   5    include:a2.example.net  [costs 2, running total 6]
   6      a:host.example.net
   7  include:b.example.net  [costs 4, running total 10]
   8    include:b1.example.net  [costs 1, running total 8]
   9    include:b2.example.net  [costs 1, running total 9]
  10    include:b3.example.net  [costs 1, running total 10]
  11  include:c.example.net  [costs 2, running total 12]  <- lookup 11: over the limit of 10
  12    redirect=c1.example.net  [costs 1, running total 12]
`
	if got := root.Format(); got != wantTree {
		t.Errorf("Format:\n%s\nwant:\n%s", got, wantTree)
	}
}

func TestWalkWithinLimit(t *testing.T) {
	t.Parallel()
	zone := `
example.org.     TXT "v=spf1 include:_spf.example.net ~all"
_spf.example.net. TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"
`
	res, _ := walk(t, zone, "example.org", WalkOpts{})
	if res.TotalLookups != 1 || res.ExceededAt != "" || len(res.Problems) != 0 {
		t.Errorf("got %d lookups, exceeded %q, problems %v", res.TotalLookups, res.ExceededAt, res.Problems)
	}
	if res.Tree.Record != "v=spf1 include:_spf.example.net ~all" || res.Tree.Children[0].Parsed == nil {
		t.Errorf("tree = %+v", res.Tree)
	}
}

func TestWalkVoidLookups(t *testing.T) {
	t.Parallel()
	zone := `
example.com.          TXT "v=spf1 a:gone1.example.com mx:nomx.example.com include:nxd.example.com exists:gone3.example.com ~all"
nomx.example.com.     A 192.0.2.1
`
	res, _ := walk(t, zone, "example.com", WalkOpts{})
	if res.TotalVoid != 4 || res.Tree.Void != 4 {
		t.Errorf("TotalVoid = %d, Tree.Void = %d, want 4", res.TotalVoid, res.Tree.Void)
	}
	if res.VoidExceededAt != "include:nxd.example.com (void lookup 3)" || res.VoidExceededIn != "example.com" {
		t.Errorf("VoidExceededAt = %q in %q", res.VoidExceededAt, res.VoidExceededIn)
	}
	if got := problemsWith(res, ErrTooManyVoid); len(got) != 1 {
		t.Errorf("void problems = %v", got)
	}
	// The include target does not exist: RFC 7208 §5.2 permerror.
	if got := problemsWith(res, ErrNoRecord); len(got) != 1 || got[0].Result != "permerror" || got[0].Domain != "nxd.example.com" {
		t.Errorf("missing include problems = %v", got)
	}
	if !strings.Contains(res.Tree.Format(), "include:nxd.example.com  [costs 1, running total 3, void 3]  <- void lookup 3: over the limit of 2") {
		t.Errorf("Format:\n%s", res.Tree.Format())
	}
}

func TestWalkMissingIncludeNotVoid(t *testing.T) {
	t.Parallel()
	// The include target has TXT records, none of them SPF: permerror
	// but not a void lookup.
	zone := `
example.com.   TXT "v=spf1 include:other.example.net -all"
other.example.net. TXT "google-site-verification=abc"
`
	res, _ := walk(t, zone, "example.com", WalkOpts{})
	if res.TotalVoid != 0 {
		t.Errorf("TotalVoid = %d", res.TotalVoid)
	}
	c := res.Tree.Children[0]
	if !errors.Is(c.Err, ErrNoRecord) || len(c.TXT) != 1 {
		t.Errorf("child = %+v", c)
	}
	if p := problemsWith(res, ErrNoRecord); len(p) != 1 || p[0].Result != "permerror" || p[0].Term != "include:other.example.net" {
		t.Errorf("problems = %v", res.Problems)
	}
}

func TestWalkManyMX(t *testing.T) {
	t.Parallel()
	var zone strings.Builder
	zone.WriteString(`example.com. TXT "v=spf1 mx -all"` + "\n")
	for i := 0; i < 12; i++ {
		name := string(rune('a'+i)) + ".mx.example.com."
		zone.WriteString("example.com. MX 10 " + name + "\n")
		if i != 3 { // d.mx has no address
			zone.WriteString(name + " A 192.0.2." + string(rune('1'+i%9)) + "\n")
		}
	}
	res, _ := walk(t, zone.String(), "example.com", WalkOpts{})
	s := res.Tree.Steps[0]
	if len(s.Names) != 12 || s.Names[0] != "a.mx.example.com" {
		t.Errorf("Names = %v", s.Names)
	}
	if !errors.Is(s.Err, ErrTooManyMX) {
		t.Errorf("Err = %v, want ErrTooManyMX", s.Err)
	}
	if !slices.Equal(s.NoAddress, []string{"d.mx.example.com"}) {
		t.Errorf("NoAddress = %v", s.NoAddress)
	}
	if res.TotalLookups != 1 {
		t.Errorf("TotalLookups = %d: MX address lookups must not count", res.TotalLookups)
	}
	// TXT, MX, then 10 address lookups: the 11th and 12th names are not
	// looked up (RFC 7208 §4.6.4).
	if res.Queries != 12 {
		t.Errorf("Queries = %d, want 12", res.Queries)
	}
	if p := problemsWith(res, ErrTooManyMX); len(p) != 1 || p[0].Result != "permerror" {
		t.Errorf("problems = %v", res.Problems)
	}
}

func TestWalkLoops(t *testing.T) {
	t.Parallel()
	zone := `
self.example.  TXT "v=spf1 include:self.example -all"
a.example.     TXT "v=spf1 include:b.example -all"
b.example.     TXT "v=spf1 redirect=A.example."
`
	for _, tc := range []struct{ domain, at string }{
		{"self.example", "self.example"},
		{"a.example", "A.example"},
	} {
		res, _ := walk(t, zone, tc.domain, WalkOpts{})
		p := problemsWith(res, ErrLoop)
		if len(p) != 1 || p[0].Result != "permerror" || p[0].Domain != tc.at {
			t.Errorf("%s: loop problems = %v", tc.domain, res.Problems)
		}
	}
}

func TestWalkRedirect(t *testing.T) {
	t.Parallel()
	zone := `
la.example.com.   TXT "v=spf1 redirect=_spf.example.com"
_spf.example.com. TXT "v=spf1 mx:example.com -all"
example.com.      MX 10 mail.example.com.
mail.example.com. A 192.0.2.1
ignored.example.com. TXT "v=spf1 redirect=_spf.example.com ?all"
gone.example.com. TXT "v=spf1 redirect=nothing.example.com"
`
	res, _ := walk(t, zone, "la.example.com", WalkOpts{})
	if res.TotalLookups != 2 || len(res.Problems) != 0 || res.Tree.Children[0].Via != "redirect=_spf.example.com" {
		t.Errorf("lookups %d, problems %v, tree %+v", res.TotalLookups, res.Problems, res.Tree)
	}
	// RFC 7208 §6.1: redirect ignored when "all" is present.
	res, _ = walk(t, zone, "ignored.example.com", WalkOpts{})
	if res.TotalLookups != 0 || len(res.Problems) != 1 || res.Problems[0].Result != "" || !strings.Contains(res.Problems[0].Err.Error(), "ignored") {
		t.Errorf("lookups %d, problems %v", res.TotalLookups, res.Problems)
	}
	// RFC 7208 §6.1: no record at the redirect target is a permerror.
	res, _ = walk(t, zone, "gone.example.com", WalkOpts{})
	if p := problemsWith(res, ErrNoRecord); len(p) != 1 || p[0].Result != "permerror" || res.TotalVoid != 1 {
		t.Errorf("problems %v, void %d", res.Problems, res.TotalVoid)
	}
}

func TestWalkMacros(t *testing.T) {
	t.Parallel()
	zone := `
example.com.          TXT "v=spf1 include:%{d}._spf.example.net exists:%{i}._ip.example.net -all"
example.com._spf.example.net. TXT "v=spf1 ip4:192.0.2.0/24 -all"
192.0.2.3._ip.example.net. A 127.0.0.2
`
	res, _ := walk(t, zone, "example.com", WalkOpts{})
	s := res.Tree.Steps
	if s[0].Target != "example.com._spf.example.net" || s[0].Child == nil || s[0].Child.Parsed == nil {
		t.Errorf("include step = %+v", s[0])
	}
	if s[1].Unexpanded != "needs %{i}" || s[1].Target != "" || res.TotalLookups != 2 {
		t.Errorf("exists step = %+v, lookups %d", s[1], res.TotalLookups)
	}
	// With a sender context the exists target is looked up.
	res, _ = walk(t, zone, "example.com", WalkOpts{Sender: &MacroContext{IP: netip.MustParseAddr("192.0.2.3")}})
	s = res.Tree.Steps
	if s[1].Target != "192.0.2.3._ip.example.net" || s[1].Void || s[1].Unexpanded != "" {
		t.Errorf("exists step = %+v", s[1])
	}
	res, _ = walk(t, zone, "example.com", WalkOpts{Sender: &MacroContext{IP: netip.MustParseAddr("192.0.2.4")}})
	if s := res.Tree.Steps[1]; !s.Void || res.TotalVoid != 1 {
		t.Errorf("exists step = %+v", s)
	}
}

func TestWalkPTR(t *testing.T) {
	t.Parallel()
	zone := `
example.com.  TXT "v=spf1 ptr -all"
3.2.0.192.in-addr.arpa. PTR mail.example.com.
`
	res, _ := walk(t, zone, "example.com", WalkOpts{})
	if s := res.Tree.Steps[0]; s.Unexpanded != "needs the client IP" || res.TotalLookups != 1 {
		t.Errorf("step = %+v", s)
	}
	res, _ = walk(t, zone, "example.com", WalkOpts{Sender: &MacroContext{IP: netip.MustParseAddr("192.0.2.3")}})
	if s := res.Tree.Steps[0]; !slices.Equal(s.Names, []string{"mail.example.com."}) || s.Void {
		t.Errorf("step = %+v", s)
	}
}

func TestWalkSplitAndMultiple(t *testing.T) {
	t.Parallel()
	zone := `
split.example.  TXT "v=spf1 ip4:192.0.2.1 " "include:inc.example -all"
inc.example.    TXT "v=spf1 ip4:192.0.2.2 -all"
inc.example.    TXT "v=DMARC1; p=none"
two.example.    TXT "v=spf1 -all"
two.example.    TXT "v=spf1 +all"
usestwo.example. TXT "v=spf1 include:two.example -all"
bad.example.    TXT "v=spf1 include:syntax.example -all"
syntax.example. TXT "v=spf1 ip4:192.0.2.300 -all"
`
	res, _ := walk(t, zone, "split.example", WalkOpts{})
	if res.Tree.Record != "v=spf1 ip4:192.0.2.1 include:inc.example -all" || res.TotalLookups != 1 || len(res.Problems) != 0 {
		t.Errorf("record %q, lookups %d, problems %v", res.Tree.Record, res.TotalLookups, res.Problems)
	}
	if c := res.Tree.Children[0]; len(c.TXT) != 2 || c.Record != "v=spf1 ip4:192.0.2.2 -all" {
		t.Errorf("child = %+v", c)
	}
	res, _ = walk(t, zone, "two.example", WalkOpts{})
	if !errors.Is(res.Tree.Err, ErrMultipleRecords) || len(res.Tree.TXT) != 2 || res.Problems[0].Result != "permerror" {
		t.Errorf("tree err %v, problems %v", res.Tree.Err, res.Problems)
	}
	res, _ = walk(t, zone, "usestwo.example", WalkOpts{})
	if p := problemsWith(res, ErrMultipleRecords); len(p) != 1 || p[0].Domain != "two.example" {
		t.Errorf("problems %v", res.Problems)
	}
	res, _ = walk(t, zone, "bad.example", WalkOpts{})
	var pe *ParseError
	if p := problemsWith(res, ErrSyntax); len(p) != 1 || !errors.As(p[0].Err, &pe) || pe.Term != "ip4:192.0.2.300" {
		t.Errorf("problems %v", res.Problems)
	}
	res, _ = walk(t, zone, "nothing.example", WalkOpts{})
	if len(res.Problems) != 1 || res.Problems[0].Result != "none" || !errors.Is(res.Tree.Err, ErrNoRecord) {
		t.Errorf("problems %v", res.Problems)
	}
}

func TestWalkTempError(t *testing.T) {
	t.Parallel()
	// A forward to a closed port makes the test server answer SERVFAIL.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	s := dnstest.Start(t, `example.com. TXT "v=spf1 include:broken.example.net -all"`, map[string]string{"broken.example.net.": dead})
	res := Walk(context.Background(), s.Resolver(), "example.com", WalkOpts{QueryTimeout: 5 * time.Second})
	if p := problemsWith(res, ErrLookup); len(p) != 1 || p[0].Result != "temperror" || p[0].Domain != "broken.example.net" {
		t.Errorf("problems %v", res.Problems)
	}
	if res.TotalVoid != 0 {
		t.Errorf("a temporary error is not a void lookup: %d", res.TotalVoid)
	}
}

func TestWalkBounds(t *testing.T) {
	t.Parallel()
	// Each level includes the next one twice: 2^n nodes without bounds.
	var zone strings.Builder
	for i := 0; i < 12; i++ {
		next := "l" + string(rune('a'+i+1)) + ".example"
		zone.WriteString("l" + string(rune('a'+i)) + ".example. TXT \"v=spf1 include:" + next + " include:" + next + " -all\"\n")
	}
	res, s := walk(t, zone.String(), "la.example", WalkOpts{MaxQueries: 50, MaxDepth: 20})
	if p := problemsWith(res, ErrWalkLimit); len(p) == 0 {
		t.Errorf("no walk-limit problem: %v", res.Problems)
	}
	// Identical queries are asked once.
	if res.Queries > 13 || s.Queries() > 13 {
		t.Errorf("Queries = %d, server saw %d", res.Queries, s.Queries())
	}
	res, _ = walk(t, zone.String(), "la.example", WalkOpts{MaxDepth: 2})
	if p := problemsWith(res, ErrWalkLimit); len(p) != 8 || !strings.Contains(p[0].Err.Error(), "deeper than 2") {
		t.Errorf("problems %v", res.Problems)
	}
}

func TestWalkDeterministic(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, overLimitZone, nil)
	first := Walk(context.Background(), s.Resolver(), "example.com", WalkOpts{}).Tree.Format()
	for i := 0; i < 5; i++ {
		if got := Walk(context.Background(), s.Resolver(), "example.com", WalkOpts{}).Tree.Format(); got != first {
			t.Fatalf("run %d differs:\n%s\nfirst:\n%s", i, got, first)
		}
	}
}

// BenchmarkWalkLatency walks overLimitZone with 50 ms per DNS answer; the
// reported ms/walk should be near the longest dependency chain (4 rounds:
// root TXT, include TXT, nested include TXT, a lookup), not the number of
// queries.
func BenchmarkWalkLatency(b *testing.B) {
	s := dnstest.Start(b, overLimitZone, nil)
	s.SetDelay(50 * time.Millisecond)
	r := s.Resolver()
	start := time.Now()
	for b.Loop() {
		Walk(context.Background(), r, "example.com", WalkOpts{})
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/walk")
}
