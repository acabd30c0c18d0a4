package bimi

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
)

const vectorsPath = "../../../shared/corpora/txt-record-vectors.tsv"

func TestParseRecordVectors(t *testing.T) {
	t.Parallel()
	// vectorDecisions settles the BIMI rows of txt-record-vectors.tsv whose
	// expectation is "see note": true means valid under draft-04.
	vectorDecisions := map[string]struct {
		valid  bool
		reason string // substring of the error or of a note
	}{
		// avp= and lps= are later drafts' tags: ignored under draft-04. The
		// records still lack l=, which draft-04 §4.2 requires.
		"v=BIMI1; avp=brand":                {false, "missing l="},
		"v=BIMI1; lps=news,billing,support": {false, "missing l="},
	}

	f, err := os.Open(vectorsPath)
	if err != nil {
		t.Skipf("corpus not available (%v): the shared corpora live beside the repository", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inBIMI := false
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ----") {
			inBIMI = strings.Contains(line, "BIMI")
			continue
		}
		if !inBIMI || strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 2 {
			t.Fatalf("malformed vector line %q", line)
		}
		txt, want := cols[0], cols[1]
		n++
		rec, err := ParseRecord(txt)
		switch {
		case strings.HasPrefix(want, "valid"):
			if err != nil {
				t.Errorf("%q: want valid, got %v", txt, err)
			}
			if strings.Contains(want, "declination") && (rec == nil || !rec.Declined) {
				t.Errorf("%q: want a declination, got %+v", txt, rec)
			}
		case strings.HasPrefix(want, "invalid"):
			if err == nil {
				t.Errorf("%q: want invalid, got %+v", txt, rec)
			} else if !errors.Is(err, ErrSyntax) {
				t.Errorf("%q: error %v does not wrap ErrSyntax", txt, err)
			}
		default:
			d, ok := vectorDecisions[txt]
			if !ok {
				t.Errorf("%q: expectation %q has no decision in vectorDecisions", txt, want)
				continue
			}
			if d.valid != (err == nil) {
				t.Errorf("%q: want valid=%v, got %+v, %v", txt, d.valid, rec, err)
			} else if err != nil && !strings.Contains(err.Error(), d.reason) {
				t.Errorf("%q: error %v, want %q", txt, err, d.reason)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Fatalf("only %d BIMI vectors found", n)
	}
}

func TestParseRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		txt      string
		logo     string
		auth     string
		declined bool
		ext      int
		note     string
	}{
		{"v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem", "https://example.com/logo.svg", "https://example.com/vmc.pem", false, 0, ""},
		{"v=BIMI1;l=https://example.com/logo.svg;", "https://example.com/logo.svg", "", false, 0, ""},
		{"v = BIMI1 ;\tl= https://example.com/logo.svgz ; a=", "https://example.com/logo.svgz", "", false, 0, ""},
		{"v=BIMI1; l=", "", "", true, 0, ""},
		{"v=BIMI1; a=; l=;", "", "", true, 0, ""},
		{"v=BIMI1; l=; a=https://example.com/vmc.pem", "", "https://example.com/vmc.pem", false, 0, "l= is empty"},
		{"v=BIMI1; l=https://example.com/l.svg; avp=brand", "https://example.com/l.svg", "", false, 1, "later BIMI drafts"},
		{"v=BIMI1; l=https://example.com/l.svg; lps=news", "https://example.com/l.svg", "", false, 1, "local-part"},
		{"v=BIMI1; l=https://example.com/l.svg; x=1", "https://example.com/l.svg", "", false, 1, "unknown tag x="},
		{"v=BIMI1; l=https://example.com/l.svg?a=1%2C2", "https://example.com/l.svg?a=1%2C2", "", false, 0, ""},
		{"v=BIMI1; l=HTTPS://Example.COM./l.svg", "HTTPS://Example.COM./l.svg", "", false, 0, ""},
	}
	for _, tc := range tests {
		rec, err := ParseRecord(tc.txt)
		if err != nil {
			t.Errorf("%q: %v", tc.txt, err)
			continue
		}
		if rec.Version != "BIMI1" || rec.Logo != tc.logo || rec.Authority != tc.auth || rec.Declined != tc.declined || len(rec.Extensions) != tc.ext {
			t.Errorf("%q: got %+v", tc.txt, rec)
		}
		notes := strings.Join(rec.Notes, "\n")
		if tc.note == "" && notes != "" || !strings.Contains(notes, tc.note) {
			t.Errorf("%q: notes %q, want %q", tc.txt, rec.Notes, tc.note)
		}
	}
}

func TestParseRecordErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		txt, tag, reason string
	}{
		{"", "", "empty record"},
		{"l=https://example.com/l.svg; v=BIMI1", "l", "first tag"},
		{"v=BIMI2; l=", "v", "exactly BIMI1"},
		{"v=bimi1; l=", "v", "exactly BIMI1"},
		{"V=BIMI1; l=", "V", "first tag"},
		{"v=BIMI1", "l", "missing l="},
		{"v=BIMI1;", "l", "missing l="},
		{"v=BIMI1; L=https://example.com/l.svg", "l", `"L=" is not "l="`},
		{"v=BIMI1; l=; l=", "l", "duplicate"},
		{"v=BIMI1; v=BIMI1; l=", "v", "duplicate"},
		{"v=BIMI1;; l=", "", "empty tag-spec"},
		{"; v=BIMI1; l=", "", "empty tag-spec"},
		{"v=BIMI1; l=; a=;;", "", "empty tag-spec"},
		{"v=BIMI1; l", "", `no "="`},
		{"v=BIMI1; 9=1; l=", "9", "invalid tag name"},
		{"v=BIMI1; l=http://example.com/l.svg", "l", `scheme "http"`},
		{"v=BIMI1; l=//example.com/l.svg", "l", "absolute https"},
		{"v=BIMI1; l=https:///l.svg", "l", "no host"},
		{"v=BIMI1; l=https://192.0.2.1/l.svg", "l", "IP address"},
		{"v=BIMI1; l=https://localhost/l.svg", "l", "fully qualified"},
		{"v=BIMI1; l=https://example.com/l.png", "l", "not .png"},
		{"v=BIMI1; l=https://a.example/a.svg,https://b.example/b.svg", "l", "single URI"},
		{"v=BIMI1; l=https://example.com/a b.svg", "l", "white space"},
		{"v=BIMI1; l=; a=ftp://example.com/vmc.pem", "a", `scheme "ftp"`},
		{"v=BIMI1; l=https://example.com/\x00.svg", "l", "byte 0x00"},
		{"v=BIMI1; l=https://example.com/é.svg", "l", "byte 0xc3"},
		{"v=BIMI1; l=https://exa%mple.com/", "l", "not a URI"},
	}
	for _, tc := range tests {
		rec, err := ParseRecord(tc.txt)
		var te *TagError
		if !errors.As(err, &te) || !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: want a *TagError, got %+v, %v", tc.txt, rec, err)
			continue
		}
		if te.Tag != tc.tag || !strings.Contains(te.Reason, tc.reason) {
			t.Errorf("%q: got tag %q reason %q, want %q / %q", tc.txt, te.Tag, te.Reason, tc.tag, tc.reason)
		}
	}
}

func FuzzParseBIMI(f *testing.F) {
	// draft-04 §4.2.1 and the examples of §4.2, plus variants.
	f.Add("v=BIMI1; l=; a=;")
	f.Add("v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem;")
	f.Add("v=BIMI1; l=https://a.example/a.svg; l=https://b.example/b.svg")
	f.Add("v=BIMI1 garbage")
	f.Add("v=BIMI1; avp=brand; lps=news,billing")
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseRecord(txt)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		if rec.Version != "BIMI1" || rec.Declined != (rec.Logo == "" && rec.Authority == "") {
			t.Fatalf("inconsistent record %+v", rec)
		}
		for _, u := range []string{rec.Logo, rec.Authority} {
			if u != "" && !strings.HasPrefix(strings.ToLower(u), "https://") {
				t.Fatalf("non-https URI %q accepted", u)
			}
		}
		// A record re-parses the same after its parts are written back.
		again, err := ParseRecord("v=BIMI1; l=" + rec.Logo + "; a=" + rec.Authority)
		if err != nil || again.Logo != rec.Logo || again.Authority != rec.Authority {
			t.Fatalf("round trip of %+v: %+v, %v", rec, again, err)
		}
	})
}
