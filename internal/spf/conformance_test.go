package spf

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/moatmail/moat/internal/dnstest"
	"go.yaml.in/yaml/v3"
)

// corpusDir holds Stalwart's SPF test suite (YAML documents of records
// and check_host() expectations). See ../../../shared/corpora/README.md.
const corpusDir = "../../../shared/corpora/stalwart-mail-auth/resources/spf"

type suiteTest struct {
	domain, sender, ip, expect string
}

// suiteItem is one entry of a document's tests: its own records (added
// to the document's) and one check per "expect" key. Keys are read in
// order: domain, sender and ip carry over to the next expect and item.
type suiteItem struct {
	name    string
	records [][2]string
	tests   []suiteTest
}

type suiteDoc struct {
	file, name string
	records    [][2]string // kind, value
	items      []suiteItem
}

// evaluated returns the domain check_host() runs on: the suite's harness
// checks the MAIL FROM identity, so the sender's domain when there is
// one, else the HELO domain.
func (tc suiteTest) evaluated() string {
	if _, d, ok := strings.Cut(tc.sender, "@"); ok && d != "" {
		return d
	}
	return tc.domain
}

// suiteDeviations are expectations of the suite that contradict
// RFC 7208; for them the test asserts our reading instead.
var suiteDeviations = map[string]string{
	// RFC 7208 §4.6, §12: "ip:" is not a mechanism, and a syntax error
	// anywhere in the record is a permerror, even after "all" (§5.1 only
	// says later mechanisms are not evaluated).
	"v=spf1 -all ip:10.0.0.1": "syntax error after all",
}

// TestConformanceStalwart uses the parse- and walk-level consequences of
// the suite's expectations; evaluating check_host() is out of scope:
//
//   - expect pass/fail/softfail/neutral: evaluation got past the record at
//     the domain, so exactly one SPF record is there and it parses
//     (RFC 7208 §4.5, §4.6);
//   - expect permerror: the walk (with the test's sender and IP as macro
//     context) finds something a receiver must treat as a permerror:
//     a syntax error, a missing or duplicated record at an include or
//     redirect, a loop, more than 10 lookups, more than 10 MX names;
//   - expect none: the walk finds no record, or a malformed domain;
//   - expect temperror: skipped (the suite injects DNS errors by name).
//
// suiteDeviations lists where the suite contradicts the RFC.
func TestConformanceStalwart(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.yml"))
	if len(files) == 0 {
		t.Skipf("SPF test suite not found at %s: conformance not checked", corpusDir)
	}
	var checked, skipped, deviations int
	for _, f := range files {
		for _, d := range readSuite(t, f) {
			for _, it := range d.items {
				s := dnstest.Start(t, suiteZone(t, d.file, append(slices.Clip(d.records), it.records...)), nil)
				r := s.Resolver()
				for _, tc := range it.tests {
					verdict, _, _ := strings.Cut(tc.expect, " ")
					domain := tc.evaluated()
					label := filepath.Base(d.file) + ": " + d.name + ": " + it.name + ": " + domain + " " + tc.ip + " → " + verdict
					mc := &MacroContext{Sender: tc.sender, Helo: tc.domain}
					if ip, err := netip.ParseAddr(tc.ip); err == nil {
						mc.IP = ip
					}
					ctx := context.Background()
					switch verdict {
					case "pass", "fail", "softfail", "neutral":
						txt, _, err := Lookup(ctx, r, domain+".")
						if err == nil {
							_, err = Parse(txt)
						}
						if _, dev := suiteDeviations[txt]; dev {
							deviations++
							if !errors.Is(err, ErrSyntax) {
								t.Errorf("%s: deviation %q: want a syntax error, got %v", label, txt, err)
							}
							continue
						}
						if err != nil {
							t.Errorf("%s: %v", label, err)
						}
					case "permerror":
						res := Walk(ctx, r, domain, WalkOpts{Sender: mc})
						found := false
						for _, p := range res.Problems {
							found = found || p.Result == "permerror"
						}
						if !found {
							t.Errorf("%s: walk found no permerror; problems %v\n%s", label, res.Problems, res.Tree.Format())
						}
					case "none":
						res := Walk(ctx, r, domain, WalkOpts{Sender: mc})
						if !errors.Is(res.Tree.Err, ErrNoRecord) && !errors.Is(res.Tree.Err, ErrBadTarget) {
							t.Errorf("%s: tree error %v", label, res.Tree.Err)
						}
					default:
						skipped++
						continue
					}
					checked++
				}
			}
		}
	}
	t.Logf("checked %d expectations of %d files, %d deviations from the RFC, skipped %d (temperror)", checked, len(files), deviations, skipped)
	if checked < 100 {
		t.Errorf("only %d expectations checked: the suite reader is broken", checked)
	}
}

func readSuite(t *testing.T, file string) []suiteDoc {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs []suiteDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		// yaml.Node keeps the repeated keys a map would reject.
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		d := suiteDoc{file: file}
		top := n.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			k, v := top.Content[i].Value, top.Content[i+1]
			switch k {
			case "name":
				d.name = v.Value
			case "records":
				for j := 0; j+1 < len(v.Content); j += 2 {
					d.records = append(d.records, [2]string{v.Content[j].Value, v.Content[j+1].Value})
				}
			case "tests":
				var cur suiteTest
				for _, tn := range v.Content {
					var it suiteItem
					for j := 0; j+1 < len(tn.Content); j += 2 {
						key, val := tn.Content[j].Value, strings.TrimSpace(tn.Content[j+1].Value)
						switch key {
						case "name":
							it.name = val
						case "domain":
							cur.domain = val
						case "sender":
							cur.sender = val
						case "ip":
							cur.ip = val
						case "expect":
							cur.expect = val
							it.tests = append(it.tests, cur)
						default:
							it.records = append(it.records, [2]string{key, val})
						}
					}
					d.items = append(d.items, it)
				}
			}
		}
		docs = append(docs, d)
	}
	return docs
}

// suiteZone turns a document's records into zone-file text: spf and exp
// become TXT; "a: name ip, ip" and aaaa address records; "mx: name ip, ip" MX records
// to synthetic hosts with those addresses; "ptr: ip name, name" PTR.
func suiteZone(t *testing.T, file string, records [][2]string) string {
	t.Helper()
	var b strings.Builder
	for _, rec := range records {
		name, value, _ := strings.Cut(strings.TrimSpace(rec[1]), " ")
		value = strings.TrimSpace(value)
		if rec[0] != "ptr" && checkName(name) != nil {
			continue // deliberately malformed names: the zone cannot hold them
		}
		fq := dns.Fqdn(name)
		switch rec[0] {
		case "spf", "exp":
			b.WriteString(fq + " TXT")
			for len(value) > 255 {
				b.WriteString(" " + quoteTXT(value[:255]))
				value = value[255:]
			}
			b.WriteString(" " + quoteTXT(value) + "\n")
		case "a", "aaaa":
			for _, ip := range strings.Split(value, ",") {
				b.WriteString(fq + " " + strings.ToUpper(rec[0]) + " " + strings.TrimSpace(ip) + "\n")
			}
		case "mx":
			for i, ip := range strings.Split(value, ",") {
				ip = strings.TrimSpace(ip)
				host := "_mx" + string(rune('a'+i)) + "." + fq
				b.WriteString(fq + " MX 10 " + host + "\n")
				typ := "A"
				if strings.Contains(ip, ":") {
					typ = "AAAA"
				}
				b.WriteString(host + " " + typ + " " + ip + "\n")
			}
		case "ptr":
			rev, err := dns.ReverseAddr(name)
			if err != nil {
				t.Fatalf("%s: ptr %q: %v", file, name, err)
			}
			for _, target := range strings.Split(value, ",") {
				b.WriteString(rev + " PTR " + dns.Fqdn(strings.TrimSpace(target)) + "\n")
			}
		default:
			t.Fatalf("%s: unknown record kind %q", file, rec[0])
		}
	}
	return b.String()
}

func quoteTXT(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
