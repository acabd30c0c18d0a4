package tlsrpt

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"

	sharedcorpora "github.com/moatmail/moat/internal/corpora"
)

// corpora is the shared corpora directory ($MOAT_CORPORA, or
// ../shared/corpora beside the repository root); the tests that read it
// skip when it is absent.
var corpora, _ = sharedcorpora.Dir()

// TestParseRecordVectors runs the "_smtp._tls" section of the shared TXT
// record vectors. Where a source's verdict is tool-specific, the ABNF of
// RFC 8460 §3 decides, as noted in override.
func TestParseRecordVectors(t *testing.T) {
	t.Parallel()
	path := corpora + "/txt-record-vectors.tsv"
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("TXT record vectors not available (%v); the corpora live beside the repository", err)
	}
	defer f.Close()
	// override gives our verdict where it differs from the source's, and
	// why.
	override := map[string]string{
		// The ABNF is 1*(field-delim tlsrpt-field): a second rua field is
		// syntactically valid, and §3 says parsers MUST accept
		// syntactically valid records. Its URIs are appended.
		"v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com": "valid",
	}
	section := false
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			section = strings.Contains(line, "_smtp._tls")
			continue
		}
		if !section || line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 2 {
			t.Fatalf("malformed vector line %q", line)
		}
		record, want := cols[0], cols[1]
		if o, ok := override[record]; ok {
			want = o
		} else if strings.HasPrefix(want, "invalid(") {
			want = "invalid"
		}
		n++
		t.Run(record, func(t *testing.T) {
			r, err := ParseRecord(record)
			switch want {
			case "valid":
				if err != nil {
					t.Fatalf("ParseRecord(%q) = %v, want valid", record, err)
				}
				again, err := ParseRecord(r.String())
				if err != nil || !reflect.DeepEqual(again, r) {
					t.Errorf("String() = %q re-parses to %+v, %v; want %+v", r.String(), again, err, r)
				}
			case "invalid":
				var pe *ParseError
				if !errors.As(err, &pe) || !errors.Is(err, ErrRecordSyntax) {
					t.Fatalf("ParseRecord(%q) = %+v, %v; want a *ParseError wrapping ErrRecordSyntax", record, r, err)
				}
			default:
				t.Fatalf("unknown verdict %q", want)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no _smtp._tls vectors found in %s", path)
	}
}

func TestParseRecord(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		rua  []string
		exts []Pair
	}{
		{"v=TLSRPTv1;rua=mailto:reports@example.com", []string{"mailto:reports@example.com"}, nil},
		{"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", []string{"https://reporting.example.com/v1/tlsrpt"}, nil},
		{"v=TLSRPTv1 ;\trua=mailto:a@example.com , \thttps://r.example/x ; ", []string{"mailto:a@example.com", "https://r.example/x"}, nil},
		{"v=TLSRPTv1; rua=mailto:a@example.com; ext-1.x_y=v!al~ue", []string{"mailto:a@example.com"}, []Pair{{"ext-1.x_y", "v!al~ue"}}},
		{"v=TLSRPTv1; foo=bar; rua=mailto:a@example.com; RUA=mailto:b@example.com", []string{"mailto:a@example.com"}, []Pair{{"foo", "bar"}, {"RUA", "mailto:b@example.com"}}},
		{"v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", []string{"mailto:a@example.com", "mailto:b@example.com"}, nil},
		{"v=TLSRPTv1; rua=MAILTO:a%2Cb@example.com?subject=x", []string{"MAILTO:a%2Cb@example.com?subject=x"}, nil},
		{"v=TLSRPTv1; rua=https://[2001:db8::1]:8443/r?a=b&c=d", []string{"https://[2001:db8::1]:8443/r?a=b&c=d"}, nil},
		{"v=TLSRPTv1; rua=mailto:a@example.com; v=TLSRPTv2", []string{"mailto:a@example.com"}, []Pair{{"v", "TLSRPTv2"}}},
	}
	for _, tc := range valid {
		r, err := ParseRecord(tc.in)
		if err != nil {
			t.Errorf("ParseRecord(%q): %v", tc.in, err)
			continue
		}
		if r.Version != Version || !reflect.DeepEqual(r.RUA, tc.rua) || !reflect.DeepEqual(r.Extensions, tc.exts) {
			t.Errorf("ParseRecord(%q) = %+v, want rua %q extensions %v", tc.in, r, tc.rua, tc.exts)
		}
	}

	invalid := []struct {
		in     string
		field  string
		offset int
		reason string // a substring of the error
	}{
		{"", "v", 0, "empty record"},
		{" v=TLSRPTv1; rua=mailto:a@example.com", "v", 0, "begins with whitespace"},
		{"v=tlsrptv1; rua=mailto:a@example.com", "v", 0, `version must be TLSRPTv1, not "tlsrptv1"`},
		{"v=TLSRPTv10; rua=mailto:a@example.com", "v", 0, `version must be TLSRPTv1, not "TLSRPTv10"`},
		{"rua=mailto:a@example.com; v=TLSRPTv1", "v", 0, "must begin with"},
		{"v=TLSRPTv1", "rua", 10, `missing required field "rua"`},
		{"v=TLSRPTv1;", "rua", 11, `missing required field "rua"`},
		{"v=TLSRPTv1; RUA=mailto:a@example.com", "rua", 36, `found "RUA"; field names are case-sensitive`},
		{"v=TLSRPTv1; rua=mailto:a@example.com ", "rua", 36, "trailing whitespace"},
		{"v=TLSRPTv1;; rua=mailto:a@example.com", "", 11, "empty field"},
		{"v=TLSRPTv1; rua=mailto:a@example.com;;", "", 37, "empty field"},
		{"v=TLSRPTv1; rua", "", 12, `has no "="`},
		{"v=TLSRPTv1; rua=", "rua", 16, "empty URI"},
		{"v=TLSRPTv1; rua=mailto:a@example.com,", "rua", 37, "empty URI"},
		{"v=TLSRPTv1; rua=mailto:a@example.com,,https://x.example", "rua", 37, "empty URI"},
		{"v=TLSRPTv1; rua=not_a_valid_uri", "rua", 16, "not a URI"},
		{"v=TLSRPTv1; rua=ftp://x.example/r", "rua", 16, `unsupported URI scheme "ftp"`},
		{"v=TLSRPTv1; rua=mailto:", "rua", 23, "no address"},
		{"v=TLSRPTv1; rua=mailto:reports", "rua", 23, "no address"},
		{"v=TLSRPTv1; rua=https:///path", "rua", 22, "no host"},
		{"v=TLSRPTv1; rua=https://x.example/a!b", "rua", 35, `'!' must be percent-encoded`},
		{"v=TLSRPTv1; rua=https://x.example/a%zz", "rua", 35, "two hexadecimal digits"},
		{"v=TLSRPTv1; rua=https://x.example/\u00e9", "rua", 34, "not allowed in a URI"},
		{"v=TLSRPTv1; rua=mailto:a@example.com https://x.example", "rua", 37, "unexpected"},
		{"v=TLSRPTv1 rua=mailto:a@example.com", "v", 11, "unexpected"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; _x=1", "_x", 38, "must begin with a letter or digit"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=", "x", 40, "empty value"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=a=b", "x", 41, `contains '='`},
		{"v=TLSRPTv1; rua=mailto:a@example.com; x=\x01", "x", 40, "byte 0x01"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; " + strings.Repeat("a", 33) + "=1", strings.Repeat("a", 33), 38, "at most 32"},
	}
	for _, tc := range invalid {
		_, err := ParseRecord(tc.in)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrRecordSyntax) {
			t.Errorf("ParseRecord(%q) = %v, want a *ParseError", tc.in, err)
			continue
		}
		if pe.Field != tc.field || pe.Offset != tc.offset || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("ParseRecord(%q) = field %q offset %d %q; want field %q offset %d containing %q", tc.in, pe.Field, pe.Offset, err, tc.field, tc.offset, tc.reason)
		}
	}
}

func TestRecordString(t *testing.T) {
	t.Parallel()
	r := &Record{RUA: []string{"mailto:a@example.com", "https://r.example/x"}, Extensions: []Pair{{"k", "v"}}}
	const want = "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/x; k=v"
	if got := r.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	back, err := ParseRecord(want)
	if err != nil {
		t.Fatal(err)
	}
	r.Version = Version
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("ParseRecord(String()) = %+v, want %+v", back, r)
	}
}

// fakeTXT answers LookupTXT from a map; absent names are NXDOMAIN.
type fakeTXT struct {
	records map[string][]string
	err     error
	asked   []string
}

func (f *fakeTXT) LookupTXT(_ context.Context, name string) ([]string, error) {
	f.asked = append(f.asked, name)
	if f.err != nil {
		return nil, f.err
	}
	txt, ok := f.records[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return txt, nil
}

func TestLookupRecord(t *testing.T) {
	t.Parallel()
	const good = "v=TLSRPTv1; rua=mailto:tlsrpt@example.net"
	tests := []struct {
		name    string
		domain  string
		txt     map[string][]string
		dnsErr  error
		wantErr error
		wantRaw string
	}{
		{name: "one record among others", domain: "Example.COM.", txt: map[string][]string{"_smtp._tls.example.com": {"v=spf1 -all", good, "v=TLSRPTv10; rua=mailto:x@example.com"}}, wantRaw: good},
		{name: "nxdomain", domain: "example.com", wantErr: ErrNoRecord},
		{name: "only other records", domain: "example.com", txt: map[string][]string{"_smtp._tls.example.com": {"hello"}}, wantErr: ErrNoRecord},
		{name: "two records", domain: "example.com", txt: map[string][]string{"_smtp._tls.example.com": {good, good + ";"}}, wantErr: ErrMultipleRecords},
		{name: "invalid record", domain: "example.com", txt: map[string][]string{"_smtp._tls.example.com": {"v=TLSRPTv1"}}, wantErr: ErrRecordSyntax, wantRaw: "v=TLSRPTv1"},
		{name: "servfail", domain: "example.com", dnsErr: &net.DNSError{Err: "server misbehaving", IsTemporary: true}, wantErr: ErrRecordLookup},
		{name: "bad domain", domain: "exa mple.com", wantErr: ErrInvalidDomain},
		{name: "underscore", domain: "a_b.example.com", wantErr: ErrInvalidDomain}, // a policy domain is a host name, as for MTA-STS
		{name: "IP address", domain: "192.0.2.1", wantErr: ErrInvalidDomain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := &fakeTXT{records: tc.txt, err: tc.dnsErr}
			rec, raw, err := LookupRecord(t.Context(), res, tc.domain)
			if raw != tc.wantRaw {
				t.Errorf("raw = %q, want %q", raw, tc.wantRaw)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(res.asked) != 1 || res.asked[0] != "_smtp._tls.example.com" {
					t.Errorf("queried %q, want [_smtp._tls.example.com]", res.asked)
				}
				if !reflect.DeepEqual(rec.RUA, []string{"mailto:tlsrpt@example.net"}) {
					t.Errorf("RUA = %q", rec.RUA)
				}
				return
			}
			var le *LookupError
			if !errors.Is(err, tc.wantErr) || !errors.As(err, &le) || rec != nil {
				t.Fatalf("LookupRecord = %+v, %v; want a *LookupError wrapping %v", rec, err, tc.wantErr)
			}
			if le.Name != RecordName(tc.domain) {
				t.Errorf("LookupError.Name = %q", le.Name)
			}
		})
	}
}
