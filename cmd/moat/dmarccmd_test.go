package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/dmarcstats"
)

// dmarcReportXML is a DMARC aggregate report (RFC 7489 appendix C) about
// domain with records records of 3 messages each.
func dmarcReportXML(org, id, domain string, records int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0"?><feedback><report_metadata><org_name>%s</org_name><email>dmarc@receiver.example</email>`+
		`<report_id>%s</report_id><date_range><begin>1793491200</begin><end>1793577599</end></date_range></report_metadata>`+
		`<policy_published><domain>%s</domain><p>quarantine</p><sp>none</sp><pct>100</pct></policy_published>`, org, id, domain)
	for i := range records {
		fmt.Fprintf(&b, `<record><row><source_ip>192.0.2.%d</source_ip><count>3</count><policy_evaluated><disposition>none</disposition>`+
			`<dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>%s</header_from></identifiers>`+
			`<auth_results><spf><domain>%s</domain><result>pass</result></spf></auth_results></record>`, i+1, domain, domain)
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}

// TestDMARCReportsCLI: moat import of DMARC reports says per file what
// became of each; moat reports dmarc list and show read them back.
func TestDMARCReportsCLI(t *testing.T) {
	t.Parallel()
	data, dir := t.TempDir(), t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(dmarcReportXML("Receiver", "r-2", "b.example", 2))
	_ = zw.Close()
	write("a.xml", dmarcReportXML("Receiver", "r-1", "a.example", 3))
	write("b.xml.gz", gz.Bytes())
	write("c.xml", dmarcReportXML("Receiver", "r-1", "a.example", 1)) // r-1's identity, another content
	write("d.xml", dmarcReportXML("Receiver", "r-4", "a.example", 2)[:200])
	// One worker: a.xml is stored before c.xml, whose identity it shares.
	out := mustMoat(t, "import", "--workers", "1", "--data", data, dir)
	for _, want := range []string{
		"reports stored 4 (invalid, kept: 1; conflicts, kept aside: 1), duplicates 0",
		"a.xml: DMARC aggregate report stored as ", "(Receiver report id r-1 about a.example, 3 records, 9 messages)",
		"b.xml.gz: DMARC aggregate report stored as ", "(Receiver report id r-2 about b.example, 2 records, 6 messages)",
		"c.xml: DMARC aggregate report kept aside as ", "has its organization, report id and period with another content",
		"d.xml: invalid DMARC aggregate report kept as ", "the report is truncated",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	var list api.DMARCReportList
	if err := json.Unmarshal([]byte(mustMoat(t, "reports", "dmarc", "list", "--json", "--data", data)), &list); err != nil {
		t.Fatal(err)
	}
	if list.Total != 4 || len(list.Reports) != 4 {
		t.Fatalf("list --json: %+v", list)
	}
	ids := map[string]string{} // report id, or status for the invalid one and the one aside: the report's id
	for _, r := range list.Reports {
		switch {
		case r.ConflictOf != 0:
			ids["conflict"] = fmt.Sprint(r.ID)
		case r.Status == "invalid":
			ids["invalid"] = fmt.Sprint(r.ID)
		default:
			ids[r.ReportID] = fmt.Sprint(r.ID)
		}
	}
	if out := mustMoat(t, "import", "--data", data, filepath.Join(dir, "a.xml")); !strings.Contains(out, "a.xml: DMARC aggregate report already stored as "+ids["r-1"]) {
		t.Errorf("import again:\n%s", out)
	}
	var imp importJSON
	if err := json.Unmarshal([]byte(mustMoat(t, "import", "--json", "--data", data, filepath.Join(dir, "b.xml.gz"))), &imp); err != nil {
		t.Fatal(err)
	}
	if len(imp.Stored) != 1 || imp.Stored[0].Outcome != "duplicate" || imp.Stored[0].Kind != "dmarc" || fmt.Sprint(imp.Stored[0].ID) != ids["r-2"] || imp.Duplicates != 1 {
		t.Errorf("import --json: %+v", imp)
	}
	out = mustMoat(t, "reports", "dmarc", "list", "a.example", "--limit", "1", "--data", data)
	if !strings.Contains(out, "a.example (not hosted)") || !strings.Contains(out, "1 of 2 reports; more with --offset 1") {
		t.Errorf("list a.example --limit 1:\n%s", out)
	}
	if out := mustMoat(t, "reports", "dmarc", "list", "--status", "conflict", "--data", data); !strings.Contains(out, "conflict (of "+ids["r-1"]+")") || strings.Count(out, "\n") != 2 {
		t.Errorf("list --status conflict:\n%s", out)
	}
	if out := mustMoat(t, "reports", "dmarc", "list", "--since", "2099-01-01", "--data", data); strings.Contains(out, "r-1") {
		t.Errorf("list --since 2099-01-01 (the reports are of 2026-11-01):\n%s", out)
	}
	out = mustMoat(t, "reports", "dmarc", "show", ids["r-1"], "--data", data)
	for _, want := range []string{"organization:  Receiver", "report id:     r-1", "3 records, 9 messages", "p=quarantine sp=none pct=100",
		"period:        2026-11-01T00:00:00Z to 2026-11-01T23:59:59Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if out := mustMoat(t, "reports", "dmarc", "show", ids["invalid"], "--data", data); !strings.Contains(out, "error:") || !strings.Contains(out, "invalid") {
		t.Errorf("show of the invalid report:\n%s", out)
	}
	if raw := mustMoat(t, "reports", "dmarc", "show", ids["r-2"], "--raw", "--data", data); raw != gz.String() {
		t.Errorf("show --raw: %.40q", raw)
	}
	for _, tc := range []struct{ args, want []string }{
		{[]string{"reports", "dmarc", "show", "abc"}, []string{"report id", "abc"}},
		{[]string{"reports", "dmarc", "show", "99999"}, []string{"no DMARC report with id 99999"}},
		{[]string{"reports", "dmarc", "list", "--status", "bad"}, []string{"--status", "bad"}},
		{[]string{"reports", "dmarc", "list", "--limit", "0"}, []string{"--limit"}},
		{[]string{"import", "--workers", "0", dir}, []string{"--workers 0: want 1 to 256"}},
	} {
		code, _, errs := moat(t, append(tc.args, "--data", data)...)
		if code != exitError {
			t.Errorf("moat %v: exit %d", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("moat %v: %q lacks %q", tc.args, errs, w)
			}
		}
	}
}

// TestDMARCSummaryCLI: total_messages is the sum of the stored reports'
// record counts (the report kept aside and the invalid one count for
// nothing), and --by splits it.
func TestDMARCSummaryCLI(t *testing.T) {
	t.Parallel()
	data, dir := t.TempDir(), t.TempDir()
	for name, b := range map[string][]byte{
		"a.xml": dmarcReportXML("Receiver", "r-1", "a.example", 3),
		"b.xml": dmarcReportXML("Receiver", "r-2", "b.example", 2),
		"c.xml": dmarcReportXML("Receiver", "r-1", "a.example", 1), // r-1's identity, another content: aside
		"d.xml": dmarcReportXML("Receiver", "r-4", "a.example", 2)[:200],
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustMoat(t, "import", "--workers", "1", "--data", data, dir) // a.xml before c.xml
	var sum dmarcstats.Summary
	if err := json.Unmarshal([]byte(mustMoat(t, "reports", "dmarc", "summary", "--since", "2026-10-01", "--by", "domain", "--json", "--data", data)), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.TotalMessages != 15 || sum.DMARCPass != 15 || sum.DMARCFail != 0 || sum.SPFPass != 15 {
		t.Errorf("summary: %+v, want 15 messages all passing", sum)
	}
	if len(sum.Rows) != 2 || sum.Rows[0] != (dmarcstats.Row{Key: "a.example", Messages: 9, Counts: dmarcstats.Counts{DMARCPass: 9, DKIMPass: 9, SPFPass: 9}}) ||
		sum.Rows[1].Key != "b.example" || sum.Rows[1].Messages != 6 {
		t.Errorf("rows: %+v", sum.Rows)
	}
	out := mustMoat(t, "reports", "dmarc", "summary", "b.example", "--since", "2026-10-01", "--data", data)
	if !strings.Contains(out, "b.example, since 2026-10-01: 6 messages, 6 passing DMARC (100.0%), 0 failing") {
		t.Errorf("summary b.example:\n%s", out)
	}
	// A period after the reports: nothing.
	if err := json.Unmarshal([]byte(mustMoat(t, "reports", "dmarc", "summary", "--since", "2026-12-01", "--json", "--data", data)), &sum); err != nil || sum.TotalMessages != 0 {
		t.Errorf("summary since 2026-12-01: %+v, %v", sum, err)
	}
	if code, _, errs := moat(t, "reports", "dmarc", "summary", "--by", "colour", "--data", data); code == exitOK || !strings.Contains(errs, `--by "colour": want day, domain, source`) {
		t.Errorf("--by colour: exit %d, %s", code, errs)
	}
}
