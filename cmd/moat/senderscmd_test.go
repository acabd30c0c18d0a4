package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corporadir "github.com/moatmail/moat/internal/corpora"
	"github.com/moatmail/moat/internal/dmarcrpt"
	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
)

// dmarcRowOf is the rollup row of a decoded record, as intake makes it:
// the DKIM signature that best explains the evaluation (an aligned pass,
// then any pass, then the first), the SPF result of scope mfrom first.
func dmarcRowOf(rep *dmarcrpt.Report, rec *dmarcrpt.Record) *store.DMARCRow {
	hf := rec.Identifiers.HeaderFrom
	aligned := func(d, mode string) bool {
		if d == "" || hf == "" {
			return false
		}
		if mode == "s" {
			return d == hf
		}
		return dnsname.OrgDomain(d) == dnsname.OrgDomain(hf)
	}
	row := &store.DMARCRow{SourceIP: rec.Row.SourceIP.String(), HeaderFrom: hf, EnvelopeFrom: rec.Identifiers.EnvelopeFrom,
		Disposition: rec.Row.PolicyEvaluated.Disposition, DKIM: rec.Row.PolicyEvaluated.DKIM, SPF: rec.Row.PolicyEvaluated.SPF,
		Messages: rec.Row.Count}
	if !rec.Row.SourceIP.IsValid() {
		row.SourceIP = ""
	}
	var reasons []string
	for _, r := range rec.Row.PolicyEvaluated.Reasons {
		reasons = append(reasons, r.Type)
	}
	row.Reason = strings.Join(reasons, ",")
	best := -1
	for i, d := range rec.AuthResults.DKIM {
		pass, al := d.Result == "pass", aligned(d.Domain, rep.Policy.ADKIM)
		if pass && al {
			best = i
			break
		}
		if best < 0 || pass && rec.AuthResults.DKIM[best].Result != "pass" {
			best = i
		}
	}
	if best >= 0 {
		d := rec.AuthResults.DKIM[best]
		row.DKIMDomain, row.DKIMSelector, row.DKIMResult, row.DKIMAligned = d.Domain, d.Selector, d.Result, aligned(d.Domain, rep.Policy.ADKIM)
	}
	for i, s := range rec.AuthResults.SPF {
		if i == 0 || s.Scope == "mfrom" {
			row.SPFDomain, row.SPFResult, row.SPFAligned = s.Domain, s.Result, aligned(s.Domain, rep.Policy.ASPF)
			if s.Scope == "mfrom" {
				break
			}
		}
	}
	return row
}

// corpusDMARC reads an aggregate report of the corpora into the report
// InsertDMARC takes, its rows produced by dmarcrpt.
func corpusDMARC(t *testing.T, path string) *store.DMARCReport {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in, err := dmarcrpt.Extract(data, dmarcrpt.ExtractOptions{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	src := in.Sources[0]
	decode := func(each func(*dmarcrpt.Record) error) (*dmarcrpt.Report, error) {
		s, err := src.Open()
		if err != nil {
			return nil, err
		}
		rep, _, err := dmarcrpt.Decode(s, dmarcrpt.Options{}, each)
		return rep, err
	}
	rep, err := decode(func(*dmarcrpt.Record) error { return nil })
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := &store.DMARCReport{Source: "import", SourceDetail: path, Raw: data, Status: store.ReportOK,
		OrgName: rep.Metadata.OrgName, OrgEmail: rep.Metadata.Email, ReportID: rep.Metadata.ReportID,
		StartTime: rep.Metadata.Begin, EndTime: rep.Metadata.End, Version: rep.Version, Domain: rep.Policy.Domain,
		ADKIM: rep.Policy.ADKIM, ASPF: rep.Policy.ASPF, P: rep.Policy.P, SP: rep.Policy.SP, NP: rep.Policy.NP, Pct: -1,
		Testing: rep.Policy.Testing, FO: rep.Policy.FO}
	if rep.Policy.Pct != nil {
		r.Pct = *rep.Policy.Pct
	}
	r.Rows = func(emit func(*store.DMARCRow) error) (store.DMARCEnd, error) {
		h := sha256.New()
		var end store.DMARCEnd
		_, err := decode(func(rec *dmarcrpt.Record) error {
			row := dmarcRowOf(rep, rec)
			fmt.Fprintf(h, "%+v\n", *row)
			end.Records++
			end.Messages += row.Messages
			return emit(row)
		})
		if err != nil {
			end.Error = err.Error()
		}
		end.ContentDigest = hex.EncodeToString(h.Sum(nil))
		return end, nil
	}
	return r
}

// sendersZone is the DNS of the end-to-end test: forward-confirmed names
// for a Google and an Amazon SES address of the corpus report, and an SPF
// record for example.com that authorizes 12.20.121.0/28 and Google.
const sendersZone = `
41.220.85.209.in-addr.arpa.  PTR mail-sor-f41.google.com.
mail-sor-f41.google.com.     A   209.85.220.41
31.8.240.54.in-addr.arpa.    PTR a8-31.smtp-out.amazonses.com.
a8-31.smtp-out.amazonses.com. A  54.240.8.31
example.com.     TXT "v=spf1 ip4:12.20.121.0/28 include:_spf.google.com ~all"
_spf.google.com. TXT "v=spf1 ip4:209.85.128.0/17 ip6:2607:f8b0:4000::/36 ~all"
`

// TestDMARCSendersCLI: two real reports of the corpora (Google's about
// example.com, all passing, and one of 2,286 failing sources) stored
// through the store, then `moat reports dmarc senders` and `impact` on
// them, with reverse DNS and SPF from a DNS server on 127.0.0.1.
func TestDMARCSendersCLI(t *testing.T) {
	t.Parallel()
	dir, err := corporadir.Dir()
	if err != nil {
		t.Skipf("corpora not found (%v): the end-to-end senders test needs them", err)
	}
	agg := filepath.Join(dir, "parsedmarc", "samples", "aggregate")
	files := []string{
		filepath.Join(dir, "parsedmarc", "samples", "extract_report", "nice-input.xml.gz"),
		filepath.Join(agg, "!large-example.com!1711897200!1711983600.xml"),
	}
	data := t.TempDir()
	st, err := store.Open(t.Context(), slog.New(slog.DiscardHandler), store.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	var batch store.DMARCBatch
	for _, f := range files {
		batch.Reports = append(batch.Reports, corpusDMARC(t, f))
	}
	res, err := st.InsertDMARC(t.Context(), batch)
	if err != nil {
		t.Fatalf("InsertDMARC: %v", err)
	}
	if res.Reports[0].Messages != 3047 || res.Reports[1].Messages != 2286 || res.Reports[1].Records != 2286 {
		t.Fatalf("stored %+v", res.Reports)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	srv := dnstest.Start(t, sendersZone, nil)
	base := []string{"--data", data, "--resolver", srv.Addr, "--until", "2024-07-01"}
	senderJSON := func(args ...string) senders.Report {
		t.Helper()
		var rep senders.Report
		out := mustMoat(t, append(append([]string{"reports", "dmarc", "senders", "example.com"}, base...), args...)...)
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return rep
	}

	// Everything: 5,333 messages from 2,301 sources.
	rep := senderJSON("--since", "2024-01-01", "--json")
	want := senders.Counts{Compliant: 3047, Misconfigured: 15, Unknown: 2271}
	if rep.Messages != 5333 || rep.Passing != 3047 || rep.ByClass != want || len(rep.Sources) != 2301 {
		t.Errorf("senders: %d messages, %d passing, %+v, %d sources; want 5333, 3047, %+v, 2301", rep.Messages, rep.Passing, rep.ByClass, len(rep.Sources), want)
	}
	if rep.Published == nil || rep.Published.P != "none" || rep.Published.Reporter != "google.com" {
		t.Errorf("published policy %+v, want p=none from google.com's report (the latest)", rep.Published)
	}
	bySource := map[string]*senders.Source{}
	for _, s := range rep.Sources {
		bySource[s.IP] = s
	}
	for _, tc := range []struct{ ip, class, service, by, spf string }{
		{"209.85.220.41", "compliant", "google", "ptr", "pass"},
		{"54.240.8.31", "compliant", "amazon-ses", "ptr", "softfail"},
		{"54.240.48.90", "compliant", "amazon-ses", "spf", "softfail"},
		{"2607:f8b0:4864:20::132", "compliant", "", "", "pass"},
		{"12.20.121.7", "misconfigured", "", "", "pass"},
		{"12.20.121.16", "unknown", "", "", "softfail"},
		{"12.20.129.200", "unknown", "", "", "softfail"},
	} {
		s := bySource[tc.ip]
		if s == nil {
			t.Errorf("no source %s", tc.ip)
			continue
		}
		svc := ""
		if s.Service != nil {
			svc = s.Service.ID
		}
		if string(s.Class) != tc.class || svc != tc.service || s.ServiceBy != tc.by || s.SPF != tc.spf {
			t.Errorf("%s: %s, service %q by %q, spf %q; want %s, %q by %q, %q", tc.ip, s.Class, svc, s.ServiceBy, s.SPF, tc.class, tc.service, tc.by, tc.spf)
		}
	}
	if s := bySource["209.85.220.41"]; s == nil || s.Messages != 420 || s.PTR != "mail-sor-f41.google.com" || !s.PTRConfirmed {
		t.Errorf("209.85.220.41: %+v", s)
	}
	if len(rep.Fixes) != 2 || len(rep.Fixes[0].Sources) != 15 || rep.Fixes[0].Messages != 15 {
		t.Errorf("fixes %+v, want two (DKIM and the return path) for the 15 authorized sources", rep.Fixes)
	}

	// New since June: the 15 sources of Google's report.
	var fresh struct {
		Sources []*senders.Source `json:"sources"`
	}
	out := mustMoat(t, append([]string{"reports", "dmarc", "senders", "example.com", "--new", "--since", "2024-06-01", "--json"}, base...)...)
	if err := json.Unmarshal([]byte(out), &fresh); err != nil {
		t.Fatal(err)
	}
	if len(fresh.Sources) != 15 || fresh.Sources[0].FirstSeen.Format("2006-01-02") != "2024-06-13" {
		t.Errorf("new sources: %d, first %+v", len(fresh.Sources), fresh.Sources[0])
	}
	// The DNS answers are in the database now: --no-dns gives the same.
	n := srv.Queries()
	if again := senderJSON("--since", "2024-01-01", "--json", "--no-dns"); again.ByClass != want || srv.Queries() != n {
		t.Errorf("--no-dns: %+v, %d queries", again.ByClass, srv.Queries()-n)
	}

	// p=reject over everything: the 2,286 failing messages; only June:
	// nothing.
	var im senders.Impact
	out = mustMoat(t, append([]string{"reports", "dmarc", "impact", "example.com", "--since", "2024-01-01", "--json"}, base...)...)
	if err := json.Unmarshal([]byte(out), &im); err != nil {
		t.Fatal(err)
	}
	if im.Messages != 5333 || im.Failing != 2286 || im.Rejected != 2286 || im.Quarantined != 0 || len(im.Groups) != 2 ||
		im.Groups[0].Class != senders.Misconfigured || im.Groups[0].Sources != 15 || im.Groups[1].Failing != 2271 {
		t.Errorf("impact: %d messages, %d failing, %d rejected, %d quarantined, groups %+v", im.Messages, im.Failing, im.Rejected, im.Quarantined, im.Groups)
	}
	out = mustMoat(t, append([]string{"reports", "dmarc", "impact", "example.com", "--since", "2024-01-01", "--policy", "quarantine", "--pct", "50"}, base...)...)
	for _, w := range []string{"Impact of p=quarantine pct=50 on example.com since 2024-01-01", "5,333 messages, 2,286 failing DMARC (42.9%): 0 would be rejected, 1,143 quarantined",
		"misconfigured", "these sources are in the SPF record of example.com but send with envelope-from a domain the reports leave out"} {
		if !strings.Contains(out, w) {
			t.Errorf("impact text lacks %q:\n%s", w, out)
		}
	}
	out = mustMoat(t, append([]string{"reports", "dmarc", "impact", "example.com", "--since", "2024-06-01"}, base...)...)
	if !strings.Contains(out, "3,047 messages, 0 failing DMARC (0.0%): 0 would be rejected, 0 quarantined") {
		t.Errorf("impact since June:\n%s", out)
	}
	out = mustMoat(t, append([]string{"reports", "dmarc", "sources", "example.com", "--since", "2024-06-01"}, base...)...)
	for _, w := range []string{"3,047 messages from 15 sources, 3,047 passed DMARC (100.0%)", "Google Workspace / Gmail (by ptr)",
		"mail-sor-f41.google.com", "Amazon SES"} {
		if !strings.Contains(out, w) {
			t.Errorf("senders text lacks %q:\n%s", w, out)
		}
	}
	// Wrong input is named.
	for _, tc := range []struct{ args []string }{
		{[]string{"reports", "dmarc", "impact", "example.com", "--policy", "none"}},
		{[]string{"reports", "dmarc", "impact", "example.com", "--pct", "0"}},
		{[]string{"reports", "dmarc", "senders", "example.com", "--since", "yesterday"}},
		{[]string{"reports", "dmarc", "senders"}},
	} {
		if code, _, errs := moat(t, append(tc.args, "--data", data)...); code == exitOK || errs == "" {
			t.Errorf("moat %s: exit %d, stderr %q", strings.Join(tc.args, " "), code, errs)
		}
	}
}
