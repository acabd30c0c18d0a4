package check_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/check/fakenet"
)

// memResolver answers from maps, in memory: TXT records by name; every
// other question is NXDOMAIN. Names are compared without the final dot.
type memResolver struct {
	txt map[string][]string
}

func (m *memResolver) notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (m *memResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if t, ok := m.txt[strings.TrimSuffix(strings.ToLower(name), ".")]; ok {
		return t, nil
	}
	return nil, m.notFound(name)
}

func (m *memResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, m.notFound(name)
}

func (m *memResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, m.notFound(host)
}

func (m *memResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	return nil, m.notFound(addr)
}

// checkRecords checks records.test with the given TXT records, in memory.
func checkRecords(t testing.TB, txt map[string][]string) *check.Report {
	t.Helper()
	c := check.New(check.Options{Resolver: &memResolver{txt: txt}, Timeout: 5 * time.Second})
	rep, err := c.Check(context.Background(), "records.test")
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return rep
}

const vectorsFile = "../../../shared/corpora/txt-record-vectors.tsv"

// vectorDecisions settles the vectors whose expectation is specific to one
// tool ("invalid(checkdmarc)", "valid(go-mtasts)", "see note"), by the
// grammar of the specification. A new tool-specific vector fails the test
// until a decision is added here.
var vectorDecisions = map[string]bool{
	// RFC 8461 §3.1: sts-text-record ends with at most one
	// sts-field-delim.
	"v=STSv1; id=a;;": false,
	// RFC 8461 §3.1: sts-field-delim = *WSP ";" *WSP allows spaces before
	// ";" (the prose about "v=STSv1;" is about discarding other records).
	"v=STSv1  ;    id=foo":              true,
	"v=STSv1  ;    id=foo; unrelated=1": true,
	// RFC 8461 §3.2, last paragraph: the first of repeated fields wins.
	"v=STSv1; id=foo; id=bar": true,
	// RFC 8460 §3: the ABNF allows any number of fields, and parsers MUST
	// accept syntactically valid records: the rua lists are joined.
	"v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com": true,
	// draft-blank-ietf-bimi-04 §4.2: tag-value syntax of RFC 6376, where a
	// repeated tag makes the whole list invalid (RFC 6376 §3.2).
	"v=BIMI1; l=https://a.example/a.svg; l=https://b.example/b.svg": false,
	// draft-04 §4.2: l= is REQUIRED; avp= and lps= (later drafts) are
	// unknown tags and ignored, which leaves a record without l=.
	"v=BIMI1; avp=brand":                false,
	"v=BIMI1; lps=news,billing,support": false,
}

// TestRecordVectors runs every vector of the shared corpus's _mta-sts,
// _smtp._tls and BIMI sections through the checker and checks that the
// finding classifies the record as valid or invalid.
func TestRecordVectors(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Skipf("corpus vectors absent, not run: %v", err)
	}
	section := ""
	counts := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "# ----"); ok {
			switch {
			case strings.Contains(rest, "_mta-sts"):
				section = "mta-sts"
			case strings.Contains(rest, "_smtp._tls"):
				section = "tls-rpt"
			case strings.Contains(rest, "BIMI"):
				section = "bimi"
			default:
				section = ""
			}
			continue
		}
		if section == "" || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 3 {
			t.Fatalf("vector line %q has %d columns", line, len(cols))
		}
		record, expect, note := strings.ReplaceAll(cols[0], "<TAB>", "\t"), cols[1], cols[2]
		if record == "(empty)" {
			record = ""
		}
		sec := section
		counts[sec]++
		t.Run(fmt.Sprintf("%s/%d", sec, counts[sec]), func(t *testing.T) {
			var valid bool
			switch {
			case expect == "valid" || strings.HasPrefix(expect, "valid (declination)"):
				valid = true
			case expect == "invalid" || expect == "n/a":
				valid = false
			default:
				d, ok := vectorDecisions[record]
				if !ok {
					t.Fatalf("tool-specific expectation %q (%s) for %q has no decision in vectorDecisions", expect, note, record)
				}
				valid = d
			}
			got, ids := classify(t, sec, record)
			if got != valid {
				t.Errorf("record %q classified valid=%v by %v; want valid=%v (%s: %s)", record, got, ids, valid, expect, note)
			}
		})
	}
	for _, sec := range []string{"mta-sts", "tls-rpt", "bimi"} {
		if counts[sec] == 0 {
			t.Errorf("no %s vectors found in %s", sec, vectorsFile)
		}
	}
}

// classify checks a domain whose record of section is record, and says
// whether the checker took the record as valid, with the finding ids that
// decided.
func classify(t *testing.T, section, record string) (bool, []string) {
	t.Helper()
	txt := map[string][]string{
		// An enforced DMARC policy, so that BIMI is judged on its record.
		"_dmarc.records.test": {"v=DMARC1; p=reject; rua=mailto:d@records.test"},
	}
	var bad, good []string
	switch section {
	case "mta-sts":
		txt["_mta-sts.records.test"] = []string{record}
		// A valid record has no policy host here: the finding is then
		// that the announced policy is missing.
		bad, good = []string{"mta-sts.record-syntax", "mta-sts.missing"}, []string{"mta-sts.policy-missing"}
	case "tls-rpt":
		txt["_smtp._tls.records.test"] = []string{record}
		bad, good = []string{"tls-rpt.syntax", "tls-rpt.missing"}, []string{"tls-rpt.ok"}
	case "bimi":
		txt["default._bimi.records.test"] = []string{record}
		bad, good = []string{"bimi.syntax", "bimi.missing"}, []string{"bimi.ok", "bimi.declined", "bimi.logo-fetch", "bimi.no-evidence"}
	}
	rep := checkRecords(t, txt)
	var ids []string
	isBad, isGood := false, false
	for _, f := range rep.Findings {
		for _, id := range bad {
			if f.ID == id {
				isBad = true
				ids = append(ids, f.ID+": "+f.Message)
			}
		}
		for _, id := range good {
			if f.ID == id {
				isGood = true
				ids = append(ids, f.ID+": "+f.Message)
			}
		}
	}
	if isBad == isGood {
		t.Fatalf("record %q: ambiguous classification %v", record, ids)
	}
	return isGood, ids
}

// TestPrivateRefused: without AllowPrivate, the policy and logo hosts and
// the MX hosts on loopback addresses are not contacted, with findings
// that say so.
func TestPrivateRefused(t *testing.T) {
	t.Parallel()
	n := startWorld(t)
	rep, err := checker(n, false, nil).Check(t.Context(), "perfect.test")
	if err != nil {
		t.Fatal(err)
	}
	verifyReport(t, rep)
	for _, w := range []want{
		{id: "mta-sts.policy-refused", severity: check.Error, message: "127.0.83.50"},
		{id: "bimi.logo-refused", severity: check.Error, message: "logo.good.test"},
		{id: "mx.private-address", severity: check.Warning, message: "mx1.good.test resolves only to non-public addresses (127.0.83.10)"},
		{id: "mx.private-address", severity: check.Warning, message: "mx2.good.test"},
	} {
		if findWith(rep, w) == nil {
			t.Errorf("no finding %s with %q", w.id, w.message)
		}
	}
	for _, id := range []string{"mta-sts.ok", "starttls.ok", "bimi.ok"} {
		if rep.Has(id) {
			t.Errorf("unexpected %s", id)
		}
	}
	if t.Failed() {
		t.Log(dump(rep))
	}
}

// TestResolverUnreachable: when no DNS answer comes at all, Check returns
// ErrDNSUnavailable instead of a report full of failed lookups.
func TestResolverUnreachable(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // nothing listens there now: queries are refused at once
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	c := check.New(check.Options{Resolver: r, Timeout: 3 * time.Second})
	rep, err := c.Check(t.Context(), "example.test")
	if !errors.Is(err, check.ErrDNSUnavailable) {
		t.Fatalf("Check = %v, %v; want ErrDNSUnavailable", rep, err)
	}
}

func TestInvalidDomain(t *testing.T) {
	t.Parallel()
	c := check.New(check.Options{Resolver: &memResolver{}})
	for _, d := range []string{"", "localhost", "192.0.2.1", "a..b", strings.Repeat("a", 64) + ".test", "a_b.example", "co.uk", "xn--zz.example"} {
		if _, err := c.Check(t.Context(), d); !errors.Is(err, check.ErrInvalidDomain) {
			t.Errorf("Check(%q) error %v, want ErrInvalidDomain", d, err)
		}
	}
	rep, err := c.Check(t.Context(), "Bücher.Example.")
	if err != nil || rep.Domain != "xn--bcher-kva.example" {
		t.Errorf("Check(Bücher.Example.) = %v, %v; want the report of xn--bcher-kva.example", rep, err)
	}
}

// TestHosted: Options.Hosted is asked with the normalized domain, and its
// answer is an informational finding.
func TestHosted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hosted bool
		err    error
		want   string
	}{
		{true, nil, "This Moat hosts the MTA-STS policy of records.test"},
		{false, nil, "This Moat does not host"},
		{false, errors.New("database locked"), "unknown: database locked"},
	} {
		var asked string
		c := check.New(check.Options{Resolver: &memResolver{}, Hosted: func(_ context.Context, d string) (bool, error) {
			asked = d
			return tc.hosted, tc.err
		}})
		rep, err := c.Check(t.Context(), "Records.Test.")
		if err != nil {
			t.Fatal(err)
		}
		if asked != "records.test" {
			t.Errorf("Hosted asked about %q", asked)
		}
		f := rep.Find("mta-sts.hosted")
		if f == nil || !strings.Contains(f.Message, tc.want) || f.Severity != check.Info || f.Penalty != 0 {
			t.Errorf("mta-sts.hosted = %+v, want message with %q", f, tc.want)
		}
	}
}

// FuzzCheckRecords checks a domain whose records are arbitrary, in
// memory: the checker never panics, every finding follows its rule, and
// the score is the sum the documentation describes.
func FuzzCheckRecords(f *testing.F) {
	f.Add("v=spf1 mx -all", "v=DMARC1; p=reject; rua=mailto:d@records.test", "v=STSv1; id=1", "v=TLSRPTv1; rua=mailto:t@records.test", "v=BIMI1; l=https://x.test/l.svg", "v=DKIM1; p=")
	f.Add("v=spf1 include:a.test redirect=b.test +all ptr", "v=DMARC1; p=none; sp=none; np=none; pct=5; t=y; rua=mailto:a@b.test,https://x/; ruf=mailto:x", "v=STSv1; id=a;;", "v=TLSRPTv1; rua=ftp://x", "v=BIMI1; l=; a=;", "k=rsa; p=!!!")
	f.Add("", "", "", "", "", "")
	f.Add("v=spf1 ?all", "v=dmarc1; p=reject", "v=STSv1", "v=TLSRPTv1", "v=BIMI1 garbage", "v=DKIM1; t=y; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAECAwEAAQ==")
	f.Fuzz(func(t *testing.T, spfTXT, dmarcTXT, sts, tlsrpt, bimiTXT, dkimTXT string) {
		txt := map[string][]string{}
		set := func(name, v string) {
			if v != "" {
				txt[name] = strings.Split(v, "\n")
			}
		}
		set("records.test", spfTXT)
		set("_dmarc.records.test", dmarcTXT)
		set("_mta-sts.records.test", sts)
		set("_smtp._tls.records.test", tlsrpt)
		set("default._bimi.records.test", bimiTXT)
		set("default._domainkey.records.test", dkimTXT)
		rep := checkRecords(t, txt)
		rules := map[string]check.Rule{}
		for _, r := range check.Rules() {
			rules[r.ID] = r
		}
		penalty := map[string]int{}
		for _, f := range rep.Findings {
			r := rules[f.ID]
			if f.Severity != r.Severity || f.Penalty != r.Penalty || f.Message == "" || (f.Penalty > 0 && f.Fix == "") {
				t.Errorf("finding %+v does not follow rule %+v", f, r)
			}
			penalty[f.Pillar+"/"+f.Component] += f.Penalty
		}
		total := 0
		for _, p := range check.Pillars() {
			for _, c := range p.Components {
				total += max(0, c.Max-penalty[p.Name+"/"+c.Name])
			}
		}
		if total != rep.Score || rep.Grade != check.Grade(rep.Score) {
			t.Errorf("score %d grade %s, recomputed %d", rep.Score, rep.Grade, total)
		}
	})
}

// TestTimeoutStillReports: when Options.Timeout ends the check while an MX
// host keeps the probe waiting, Check still returns the report, and the
// probe's finding says it timed out.
func TestTimeoutStillReports(t *testing.T) {
	t.Parallel()
	const zone = `
slow.test. 60 IN MX 10 mx.slow.test.
slow.test. 60 IN TXT "v=spf1 mx -all"
_dmarc.slow.test. 60 IN TXT "v=DMARC1; p=reject; rua=mailto:d@slow.test"
mx.slow.test. 60 IN A 127.0.83.60
`
	n := fakenet.Start(t, fakenet.Spec{Zone: zone, SMTP: []fakenet.SMTPHost{{Addr: "127.0.83.60", Hostname: "mx.slow.test", Silent: true}}})
	c := check.New(check.Options{
		Resolver: n.DNS.Resolver(), SMTPPort: n.SMTPPort, AllowPrivate: true,
		Timeout: 500 * time.Millisecond, StepTimeout: time.Minute,
	})
	start := time.Now()
	rep, err := c.Check(t.Context(), "slow.test")
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the check took %v: Options.Timeout did not end the probe", took)
	}
	f := rep.Find("starttls.unreachable")
	if f == nil || !strings.Contains(strings.ToLower(f.Message), "time") {
		t.Errorf("starttls.unreachable = %+v, want a timeout", f)
	}
	if !rep.Has("dmarc.ok") || !rep.Has("spf.ok") {
		t.Errorf("the lookups that finished are missing:\n%s", dump(rep))
	}
}
