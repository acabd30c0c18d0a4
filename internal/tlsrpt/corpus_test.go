package tlsrpt

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// tlsCorpusDirs are the TLS-RPT folders of the shared corpora.
var tlsCorpusDirs = []string{
	"parsedmarc/samples/smtp_tls",
	"mox/testdata/tlsreports",
	"stalwart-mail-auth/resources/tlsrpt",
	"cry-inc-dmarc-report-viewer/testdata/smtp-tls-reports",
}

// corpusWarnings lists, per corpus file, the paths of the warnings Decode
// must give: the quirk each file carries. Files not listed must decode
// without warnings.
var corpusWarnings = map[string][]string{
	// Microsoft's TLSA policy-string: one string holding a JSON array.
	"cry-inc-dmarc-report-viewer/testdata/smtp-tls-reports/microsoft.json": {"policies[1].policy.policy-string"},
	// contact-info: null, and an mx-host entry with a literal "mx: ".
	"cry-inc-dmarc-report-viewer/testdata/smtp-tls-reports/no-contact.json": {"contact-info", "policies[0].policy.mx-host[0]"},
	// Microsoft: datetimes without a time zone.
	"mox/testdata/tlsreports/microsoft.eml": {"date-range.start-datetime", "date-range.end-datetime"},
	// Mail.ru: total-failure-session-count 1, failure details summing to 2.
	"parsedmarc/samples/smtp_tls/mail.ru.json": {"policies[0].summary.total-failure-session-count"},
	// The RFC 8460 appendix example: mx-host as a string.
	"parsedmarc/samples/smtp_tls/rfc8460.json": {"policies[0].policy.mx-host"},
	// additional-information with spaces: not a URI.
	"stalwart-mail-auth/resources/tlsrpt/rpt01.json": {"policies[0].failure-details[1].additional-information"},
	"stalwart-mail-auth/resources/tlsrpt/rpt01.eml":  {"policies[0].failure-details[1].additional-information"},
	// No policy-domain, no total-failure-session-count, an unknown
	// policy-type.
	"stalwart-mail-auth/resources/tlsrpt/rpt03.json": {
		"policies[0].policy.policy-domain", "policies[0].summary.total-failure-session-count",
		"policies[1].policy.policy-type", "policies[1].policy.policy-domain", "policies[1].summary.total-failure-session-count",
	},
}

// TestCorpus decodes every TLS-RPT file of the shared corpora: .json
// through Decode, .eml through ExtractMessage, Decompress and Decode. Each
// must decode with exactly the expected warnings, and its totals, policy
// count and domains must equal those computed by a generic JSON walk.
func TestCorpus(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(corpora); err != nil {
		t.Skipf("shared corpora not available at %s (%v); they live beside the repository", corpora, err)
	}
	seen := 0
	for _, dir := range tlsCorpusDirs {
		files, err := os.ReadDir(filepath.Join(corpora, dir))
		if err != nil {
			t.Errorf("corpus folder %s: %v", dir, err)
			continue
		}
		for _, f := range files {
			ext := filepath.Ext(f.Name())
			if ext != ".json" && ext != ".eml" {
				continue
			}
			rel := dir + "/" + f.Name()
			seen++
			t.Run(rel, func(t *testing.T) {
				data, err := os.ReadFile(filepath.Join(corpora, rel))
				if err != nil {
					t.Fatal(err)
				}
				if ext == ".eml" {
					data = extractCorpusMessage(t, data)
				}
				rep, warns, err := Decode(data)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				var paths []string
				for _, w := range warns {
					paths = append(paths, w.Path)
				}
				if want := corpusWarnings[rel]; !reflect.DeepEqual(paths, want) {
					t.Errorf("warnings at %q, want %q; warnings: %v", paths, want, warns)
				}
				checkAgainstGenericWalk(t, data, rep)
				checkRoundTrip(t, rep)
			})
		}
	}
	if seen == 0 {
		t.Fatal("no TLS-RPT corpus file found")
	}
}

// extractCorpusMessage runs a report e-mail through ExtractMessage and
// Decompress, checks the header fields against a plain scan of the
// header, and returns the JSON.
func extractCorpusMessage(t *testing.T, raw []byte) []byte {
	t.Helper()
	msg, err := ExtractMessage(bytes.NewReader(raw), 1<<20)
	if err != nil {
		t.Fatalf("ExtractMessage: %v", err)
	}
	if want := strings.ToLower(headerValue(raw, "TLS-Report-Domain")); msg.ReportDomain != want || want == "" {
		t.Errorf("ReportDomain = %q, want %q", msg.ReportDomain, want)
	}
	if want := strings.ToLower(headerValue(raw, "TLS-Report-Submitter")); msg.ReportSubmitter != want || want == "" {
		t.Errorf("ReportSubmitter = %q, want %q", msg.ReportSubmitter, want)
	}
	if msg.ReportID == "" || strings.ContainsAny(msg.ReportID, "<> ") || !strings.Contains(headerValue(raw, "Subject"), msg.ReportID) {
		t.Errorf("ReportID = %q from Subject %q", msg.ReportID, headerValue(raw, "Subject"))
	}
	if msg.Date.IsZero() || msg.From == "" {
		t.Errorf("Date = %v, From = %q", msg.Date, msg.From)
	}
	if len(msg.Parts) != 1 || !strings.HasPrefix(msg.Parts[0].MediaType, "application/tlsrpt") || msg.Parts[0].Filename == "" {
		t.Fatalf("Parts = %+v, want one application/tlsrpt* part with a file name", msg.Parts)
	}
	out, format, err := Decompress(msg.Parts[0].Data, 1<<20)
	if err != nil {
		t.Fatalf("Decompress: %v", err)
	}
	wantFormat := "plain"
	if strings.HasSuffix(msg.Parts[0].Filename, ".gz") {
		wantFormat = "gzip"
	}
	if format != wantFormat {
		t.Errorf("format %q, want %q", format, wantFormat)
	}
	return out
}

// headerValue returns the unfolded value of the first header field name
// of a raw message, by a plain line scan.
func headerValue(raw []byte, name string) string {
	head, _, _ := bytes.Cut(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n\n"))
	lines := strings.Split(string(head), "\n")
	for i, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(k, name) {
			continue
		}
		for _, cont := range lines[i+1:] {
			if cont == "" || (cont[0] != ' ' && cont[0] != '\t') {
				break
			}
			v += " " + cont
		}
		return strings.Join(strings.Fields(v), " ")
	}
	return ""
}

// checkAgainstGenericWalk recomputes totals, policy count and domains
// from the JSON with a plain decode into any, and compares.
func checkAgainstGenericWalk(t *testing.T, data []byte, rep *Report) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("generic decode: %v", err)
	}
	pols, _ := doc["policies"].([]any)
	var succ, fail float64
	var domains []string
	for _, p := range pols {
		pm, _ := p.(map[string]any)
		sum, _ := pm["summary"].(map[string]any)
		s, _ := sum["total-successful-session-count"].(float64)
		f, _ := sum["total-failure-session-count"].(float64)
		succ += s
		fail += f
		pol, _ := pm["policy"].(map[string]any)
		if d, _ := pol["policy-domain"].(string); d != "" {
			domains = append(domains, strings.ToLower(strings.TrimSuffix(d, ".")))
		}
	}
	slices.Sort(domains)
	domains = slices.Compact(domains)
	if s, f := rep.Totals(); float64(s) != succ || float64(f) != fail {
		t.Errorf("Totals() = %d, %d; the file sums to %v, %v", s, f, succ, fail)
	}
	if len(rep.Policies) != len(pols) {
		t.Errorf("%d policies, the file has %d", len(rep.Policies), len(pols))
	}
	if !reflect.DeepEqual(rep.Domains(), domains) {
		t.Errorf("Domains() = %q, the file has %q", rep.Domains(), domains)
	}
}
