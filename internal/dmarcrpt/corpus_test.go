package dmarcrpt

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/corpora"
)

// TestCorpus is the conformance test over every DMARC aggregate and
// failure report of the shared corpora: each must parse with exactly the
// warnings corpora.DMARC lists, or be refused with its reason. Aggregate
// reports must have the records and the sum of counts listed there, which
// a plain scan of their XML confirms; stalwart's expected parses (.json
// beside its files) are compared field by field.
func TestCorpus(t *testing.T) {
	t.Parallel()
	dir, err := corpora.Dir()
	if err != nil {
		t.Skipf("SKIP: %v; the DMARC conformance over real reports is not checked", err)
	}
	table := corpora.DMARC()
	listed := map[string]bool{}
	for _, f := range table {
		listed[f.Path] = true
	}
	for _, g := range corpora.DMARCGlobs() {
		files, _ := filepath.Glob(filepath.Join(dir, g))
		for _, file := range files {
			if fi, err := os.Stat(file); err != nil || fi.IsDir() {
				continue
			}
			rel, _ := filepath.Rel(dir, file)
			if !listed[filepath.ToSlash(rel)] {
				t.Errorf("%s is not in corpora.DMARC(): a new corpus file; add its outcome", rel)
			}
		}
	}
	for _, f := range table {
		t.Run(f.Path, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f.File(dir))
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind == corpora.Failure {
				checkFailureFile(t, f, data)
			} else {
				checkAggregateFile(t, f, data)
			}
		})
	}
}

func paths(ws []Warning) []string {
	var p []string
	for _, w := range ws {
		p = append(p, w.Path)
	}
	return p
}

// checkOutcome compares an outcome with the table's entry.
func checkOutcome(t *testing.T, f corpora.DMARCFile, err error, warns []Warning) {
	t.Helper()
	for _, w := range warns {
		t.Logf("warning: %s", w)
	}
	switch {
	case err != nil && f.Parses():
		t.Errorf("refused, but corpora.DMARC says it parses: %v", err)
	case err == nil && !f.Parses():
		t.Errorf("parses, but corpora.DMARC says it is refused with %q", f.Refused)
	case err != nil && !strings.Contains(err.Error(), f.Refused):
		t.Errorf("refused with %q, corpora.DMARC says %q", err, f.Refused)
	case err != nil:
		t.Logf("refused: %v", err)
	}
	if got := paths(warns); !slices.Equal(got, f.Warnings) {
		t.Errorf("warnings at %#v; corpora.DMARC lists %#v", got, f.Warnings)
	}
}

var (
	countRE  = regexp.MustCompile(`<(?:[\w.-]+:)?count>\s*([0-9]+)\s*</(?:[\w.-]+:)?count>`)
	recordRE = regexp.MustCompile(`<(?:[\w.-]+:)?record[\s>]`)
)

func checkAggregateFile(t *testing.T, f corpora.DMARCFile, data []byte) {
	in, err := Extract(data, ExtractOptions{})
	if err != nil {
		checkOutcome(t, f, err, nil)
		return
	}
	warns := in.Warnings
	st, err := in.Sources[0].Open()
	if err != nil {
		checkOutcome(t, f, err, warns)
		return
	}
	var records []*Record
	rep, dw, err := Decode(st, Options{}, func(r *Record) error {
		records = append(records, r)
		return nil
	})
	warns = append(append(warns, st.Warnings()...), dw...)
	checkOutcome(t, f, err, warns)
	if err != nil {
		return
	}
	if rep.Records != f.Records || rep.Messages != f.Messages {
		t.Errorf("%d records, %d messages; corpora.DMARC lists %d, %d", rep.Records, rep.Messages, f.Records, f.Messages)
	}
	t.Logf("%d records, %d messages; %s %q, report %q", rep.Records, rep.Messages, rep.Namespace, rep.Version, rep.Metadata.ReportID)

	// A plain scan of the decompressed XML must find as many records and
	// the same sum of counts.
	st, err = in.Sources[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	xml, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, m := range countRE.FindAllSubmatch(xml, -1) {
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		sum += n
	}
	if n := int64(len(recordRE.FindAll(xml, -1))); n != rep.Records || sum != rep.Messages {
		t.Errorf("a plain scan finds %d records and counts summing to %d; the decoder %d, %d", n, sum, rep.Records, rep.Messages)
	}
	compareStalwartAggregate(t, f, rep, records)
}

// compareStalwartAggregate compares with stalwart's expected parse, the
// .json beside its .xml and .eml files.
func compareStalwartAggregate(t *testing.T, f corpora.DMARCFile, rep *Report, records []*Record) {
	dir, _ := corpora.Dir()
	if !strings.HasPrefix(f.Path, "stalwart-mail-auth/") {
		return
	}
	raw, err := os.ReadFile(strings.TrimSuffix(f.File(dir), filepath.Ext(f.Path)) + ".json")
	if err != nil {
		t.Fatalf("stalwart's expected parse: %v", err)
	}
	var want struct {
		Metadata struct {
			OrgName   string                     `json:"org_name"`
			ReportID  string                     `json:"report_id"`
			DateRange struct{ Begin, End int64 } `json:"date_range"`
		} `json:"report_metadata"`
		Policy struct {
			Domain string
			P      string
		} `json:"policy_published"`
		Record []struct {
			Row struct {
				SourceIP string `json:"source_ip"`
				Count    int64
				PE       struct{ Disposition, DKIM, SPF string } `json:"policy_evaluated"`
			}
			Identifiers struct {
				HeaderFrom string `json:"header_from"`
			}
			AuthResults struct {
				DKIM []struct{ Domain, Result string }
				SPF  []struct{ Domain, Result string }
			} `json:"auth_results"`
		}
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	m := rep.Metadata
	if m.OrgName != want.Metadata.OrgName || m.ReportID != want.Metadata.ReportID || m.Begin.Unix() != want.Metadata.DateRange.Begin ||
		m.End.Unix() != want.Metadata.DateRange.End || rep.Policy.Domain != want.Policy.Domain || rep.Policy.P != strings.ToLower(want.Policy.P) {
		t.Errorf("header %+v, %+v; stalwart %+v, %+v", m, rep.Policy, want.Metadata, want.Policy)
	}
	if len(records) != len(want.Record) {
		t.Fatalf("%d records, stalwart %d", len(records), len(want.Record))
	}
	for i, w := range want.Record {
		r := records[i]
		pe := r.Row.PolicyEvaluated
		if r.Row.SourceIP.String() != w.Row.SourceIP || r.Row.Count != w.Row.Count || r.Identifiers.HeaderFrom != w.Identifiers.HeaderFrom ||
			pe.Disposition != strings.ToLower(w.Row.PE.Disposition) || pe.DKIM != strings.ToLower(w.Row.PE.DKIM) || pe.SPF != strings.ToLower(w.Row.PE.SPF) ||
			len(r.AuthResults.DKIM) != len(w.AuthResults.DKIM) || len(r.AuthResults.SPF) != len(w.AuthResults.SPF) {
			t.Errorf("record %d = %+v; stalwart %+v", i, r, w)
			continue
		}
		for j, d := range w.AuthResults.DKIM {
			if got := r.AuthResults.DKIM[j]; got.Domain != d.Domain || got.Result != strings.ToLower(d.Result) {
				t.Errorf("record %d dkim %d = %+v; stalwart %+v", i, j, got, d)
			}
		}
		for j, s := range w.AuthResults.SPF {
			if got := r.AuthResults.SPF[j]; got.Domain != s.Domain || got.Result != strings.ToLower(s.Result) {
				t.Errorf("record %d spf %d = %+v; stalwart %+v", i, j, got, s)
			}
		}
	}
}

func checkFailureFile(t *testing.T, f corpora.DMARCFile, data []byte) {
	rep, warns, err := ParseFailure(data, FailureOptions{})
	checkOutcome(t, f, err, warns)
	if err != nil {
		return
	}
	t.Logf("%s from %s about %s (%s), original from %q", rep.AuthFailure, rep.SourceIP, rep.ReportedDomain, rep.ArrivalDate.Format(time.RFC3339), rep.Original.From)
	if rep.FeedbackType != "auth-failure" || !rep.Original.Present {
		t.Errorf("Feedback-Type %q, original present %v", rep.FeedbackType, rep.Original.Present)
	}
	compareStalwartFailure(t, f, rep)
}

// compareStalwartFailure compares with stalwart's expected parse of an
// ARF report.
func compareStalwartFailure(t *testing.T, f corpora.DMARCFile, rep *FailureReport) {
	dir, _ := corpora.Dir()
	if !strings.HasPrefix(f.Path, "stalwart-mail-auth/resources/arf/") {
		return
	}
	raw, err := os.ReadFile(strings.TrimSuffix(f.File(dir), ".eml") + ".json")
	if err != nil {
		t.Fatalf("stalwart's expected parse: %v", err)
	}
	var want struct {
		ArrivalDate      *int64   `json:"arrival_date"`
		AuthResults      []string `json:"authentication_results"`
		Incidents        int64
		OriginalMailFrom *string  `json:"original_mail_from"`
		OriginalRcptTo   *string  `json:"original_rcpt_to"`
		ReportedDomain   []string `json:"reported_domain"`
		ReportedURI      []string `json:"reported_uri"`
		SourceIP         *string  `json:"source_ip"`
		UserAgent        string   `json:"user_agent"`
		AuthFailure      string   `json:"auth_failure"`
		DKIMDomain       *string  `json:"dkim_domain"`
		DKIMIdentity     *string  `json:"dkim_identity"`
		DKIMSelector     *string  `json:"dkim_selector"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return strings.Trim(*p, "<>")
	}
	var arrival int64
	if !rep.ArrivalDate.IsZero() {
		arrival = rep.ArrivalDate.Unix()
	}
	wantArrival := int64(0)
	if want.ArrivalDate != nil {
		wantArrival = *want.ArrivalDate
	}
	var rcpt string
	if len(rep.OriginalRcptTo) > 0 {
		rcpt = rep.OriginalRcptTo[0]
	}
	var ip string
	if rep.SourceIP.IsValid() {
		ip = rep.SourceIP.String()
	}
	got := []any{arrival, len(rep.AuthenticationResults), rep.Incidents, rep.OriginalMailFrom, rcpt, strings.Join(rep.ReportedDomain, ","), strings.Join(rep.ReportedURI, ","),
		ip, rep.UserAgent, rep.AuthFailure, rep.DKIMDomain, rep.DKIMIdentity, rep.DKIMSelector}
	exp := []any{wantArrival, len(want.AuthResults), want.Incidents, str(want.OriginalMailFrom), str(want.OriginalRcptTo), strings.Join(want.ReportedDomain, ","), strings.Join(want.ReportedURI, ","),
		str(want.SourceIP), want.UserAgent, strings.ToLower(want.AuthFailure), str(want.DKIMDomain), str(want.DKIMIdentity), str(want.DKIMSelector)}
	if !slices.Equal(fmtAll(got), fmtAll(exp)) {
		t.Errorf("fields %v; stalwart %v", got, exp)
	}
}

func fmtAll(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(toString(x), "\n", " "), "  ", " "))
	}
	return out
}

func toString(x any) string {
	switch v := x.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	}
	return ""
}
