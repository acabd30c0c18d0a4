package dmarcrpt

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/corpora"
	"github.com/moatmail/moat/internal/mailmime"
)

// secretsOf lists what the redacted view of the report in data must not
// hold: every address anywhere in the message (its raw text and its
// base64 parts decoded) and the subjects.
func secretsOf(t *testing.T, data []byte, rep *FailureReport) []string {
	t.Helper()
	text := string(data)
	h, body, err := mailmime.ReadHeader(data)
	if err == nil {
		mailmime.Walk(h, body, mailmime.Options{}, func(p *mailmime.Part) { text += "\n" + string(p.Body) })
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if len(s) >= 4 && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, m := range addrRE.FindAllString(text, -1) {
		add(strings.TrimLeft(m, ".-"))
	}
	add(rep.Original.Subject)
	add(rep.Mail.Subject)
	return out
}

// checkRedacted asserts that no secret of the report in data is in its
// redacted view, and that the view kept what an operator needs.
func checkRedacted(t *testing.T, name string, data []byte) {
	t.Helper()
	rep, _, err := ParseFailure(data, FailureOptions{})
	rf, rerr := RedactFailure(data, FailureOptions{})
	if err != nil {
		if rerr == nil || rerr.Error() != err.Error() {
			t.Errorf("%s: RedactFailure error %v, ParseFailure error %v", name, rerr, err)
		}
		return
	}
	if rerr != nil {
		t.Fatalf("%s: RedactFailure: %v", name, rerr)
	}
	js, err := json.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		t.Fatal(err)
	}
	values := strings.Join(jsonValues(generic, nil), "\n")
	text := rf.String()
	for _, s := range secretsOf(t, data, rep) {
		// The JSON's values (a subject can be "Subject", a key), and the
		// text view, which has labels too: addresses only there.
		if strings.Contains(values, s) || (strings.Contains(s, "@") && strings.Contains(text, s)) {
			t.Errorf("%s: the redacted view holds %q", name, s)
		}
	}
	// Kept: the domains, the source, the DKIM key.
	r := rf.Report
	if r.AuthFailure != rep.AuthFailure || r.SourceIP != rep.SourceIP || r.DKIMDomain != rep.DKIMDomain ||
		r.DKIMSelector != rep.DKIMSelector || strings.Join(r.ReportedDomain, ",") != strings.Join(rep.ReportedDomain, ",") {
		t.Errorf("%s: the redacted view lost a kept field: %+v, want %+v", name, r, rep)
	}
	if d := domainPart(rep.Original.From); d != "" && !strings.HasSuffix(r.Original.From, "@"+d) {
		t.Errorf("%s: Original.From %q lost its domain %q", name, r.Original.From, d)
	}
	if rep.Original.Subject != "" && r.Original.Subject != Redacted {
		t.Errorf("%s: Original.Subject = %q", name, r.Original.Subject)
	}
	for _, h := range rf.Headers {
		if _, ok := keepHeaders[h.Name]; !ok {
			t.Errorf("%s: header field %s kept", name, h.Name)
		}
	}
}

// jsonValues lists the strings of a decoded JSON value.
func jsonValues(v any, out []string) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, e := range v {
			out = jsonValues(e, out)
		}
	case map[string]any:
		for _, e := range v {
			out = jsonValues(e, out)
		}
	}
	return out
}

func domainPart(a string) string {
	if at := strings.LastIndexByte(a, '@'); at >= 0 {
		return a[at+1:]
	}
	return ""
}

// TestRedactFixtures: our own failure reports, one quirk each.
func TestRedactFixtures(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/failure/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkRedacted(t, f, data)
	}
}

// TestRedactCorpora: the real failure reports of the shared corpora
// (parsedmarc's samples, stalwart's ARF reports).
func TestRedactCorpora(t *testing.T) {
	t.Parallel()
	dir, err := corpora.Dir()
	if err != nil {
		t.Skipf("SKIP: %v; the redaction of real failure reports is not checked", err)
	}
	var files []string
	for _, p := range []string{"parsedmarc/samples/failure/*.eml", "stalwart-mail-auth/resources/arf/*.eml"} {
		m, _ := filepath.Glob(filepath.Join(dir, p))
		files = append(files, m...)
	}
	if len(files) < 8 {
		t.Fatalf("only %d failure reports in %s", len(files), dir)
	}
	parsed := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ParseFailure(data, FailureOptions{}); err == nil {
			parsed++
		}
		checkRedacted(t, filepath.Base(f), data)
	}
	if parsed < 6 {
		t.Errorf("only %d of %d corpus files parse as failure reports", parsed, len(files))
	}
}

// TestRedactTable: values and what they become.
func TestRedactTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"jane.doe@example.com", "j***@example.com"},
		{"<jane@example.com>", "j***@example.com"},
		{`"Jane Doe"@example.com`, "***@example.com"},
		{"@example.com", "***@example.com"},
		{"élodie@exemple.fr", "é***@exemple.fr"},
		{"not an address", Redacted},
		{"", ""},
	} {
		if got := MaskAddress(tc.in); got != tc.want {
			t.Errorf("MaskAddress(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"mx.example; spf=fail smtp.mailfrom=bounce@example.com; dmarc=fail header.from=example.com",
			"mx.example; spf=fail smtp.mailfrom=b***@example.com; dmarc=fail header.from=example.com"},
		{"Pass (sender SPF authorized) identity=mailfrom; envelope-from=\"a.b@c.example\"; receiver=x@y.example;",
			"Pass (sender SPF authorized) identity=mailfrom; envelope-from=\"a***@c.example\"; receiver=x***@y.example;"},
		{"SRS0=h=tt=orig.example=alice@fwd.example", "SRS0=h=tt=orig.example=a***@fwd.example"},
		{"no address here", "no address here"},
		{"masked already: ***@example.com and j***@example.com", "masked already: ***@example.com and j***@example.com"},
	} {
		if got := MaskText(tc.in); got != tc.want {
			t.Errorf("MaskText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := dkimTags("v=1; a=rsa-sha256; d=example.com; s=sel1;\r\n i=jane@example.com; h=From:To; bh=abc; b=xyz"); got != "a=rsa-sha256; d=example.com; s=sel1" {
		t.Errorf("dkimTags = %q", got)
	}
	if got := maskMessageID("<1234.abc@mail.example.com>"); got != "<***@mail.example.com>" {
		t.Errorf("maskMessageID = %q", got)
	}
}

// TestRedactNotAReport: the parser's errors come through.
func TestRedactNotAReport(t *testing.T) {
	t.Parallel()
	if _, err := RedactFailure([]byte("hello"), FailureOptions{}); !errors.Is(err, ErrNotFailureReport) {
		t.Errorf("RedactFailure(hello) = %v", err)
	}
	if _, err := RedactFailure(make([]byte, 200), FailureOptions{MaxSize: 100}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("RedactFailure(too large) = %v", err)
	}
}

// maskedRE is what an address in a redacted view looks like.
var maskedRE = regexp.MustCompile(`^(\*\*\*|[^@]\*\*\*)$`)

func FuzzRedactFailure(f *testing.F) {
	addSeeds(f, "testdata/failure/*.eml", "$C/parsedmarc/samples/failure/*.eml", "$C/stalwart-mail-auth/resources/arf/*.eml")
	f.Fuzz(func(t *testing.T, data []byte) {
		rf, err := RedactFailure(data, FailureOptions{MaxSize: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrNotFailureReport) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			if errors.Is(err, errInternal) {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		rep, _, err := ParseFailure(data, FailureOptions{MaxSize: 1 << 20})
		if err != nil {
			t.Fatalf("RedactFailure succeeded, ParseFailure failed: %v", err)
		}
		js, err := json.Marshal(rf)
		if err != nil {
			t.Fatal(err)
		}
		var back RedactedFailure
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("the view's JSON does not read back: %v", err)
		}
		out := string(js) + rf.String()
		// Every address left in the view is masked.
		var generic any
		if err := json.Unmarshal(js, &generic); err != nil {
			t.Fatal(err)
		}
		for _, v := range jsonValues(generic, nil) {
			for _, m := range addrRE.FindAllStringSubmatch(v, -1) {
				local := strings.TrimLeft(m[1], `"<.-`)
				if !maskedRE.MatchString(local) && !strings.HasSuffix(local, "***") {
					t.Fatalf("unmasked address %q in %q", m[0], v)
				}
			}
		}
		for _, s := range []string{rep.Original.Subject, rep.Mail.Subject, rep.Original.From, rep.Original.To, rep.OriginalMailFrom} {
			// An address with a local part (the domain of "@example.com"
			// is kept).
			if len(s) >= 4 && strings.Trim(s, "<> \t") != "" && strings.IndexByte(strings.TrimLeft(s, "<\" \t"), '@') > 0 && strings.Contains(out, s) {
				t.Fatalf("the view holds %q", s)
			}
		}
		if rep.Original.Subject != "" && rf.Report.Original.Subject != Redacted {
			t.Fatalf("subject %q kept as %q", rep.Original.Subject, rf.Report.Original.Subject)
		}
	})
}
