package intake

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

const (
	testDMARCRcpt = "dmarc@reports.example.net"
	testRUFRcpt   = "ruf@reports.example.net"
)

// dmarcXML is a DMARC aggregate report (RFC 7489 appendix C) about domain
// with records records of count messages each, from 192.0.2.N.
func dmarcXML(org, id, domain string, records int, count int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata><org_name>%s</org_name><email>dmarc@%s</email><report_id>%s</report_id>
    <date_range><begin>1793491200</begin><end>1793577599</end></date_range></report_metadata>
  <policy_published><domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct></policy_published>
`, org, strings.ToLower(org)+".example", id, domain)
	for i := range records {
		fmt.Fprintf(&b, `  <record><row><source_ip>192.0.2.%d</source_ip><count>%d</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>%s</header_from></identifiers>
    <auth_results><dkim><domain>%s</domain><selector>s1</selector><result>pass</result></dkim><spf><domain>bounce.other.example</domain><result>pass</result></spf></auth_results></record>
`, i%250+1, count, domain, domain)
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}

// dmarcMail is an aggregate report mail (RFC 7489 §7.2.1.1) with the
// report attached as mediaType.
func dmarcMail(mediaType, filename string, attachment []byte) []byte {
	var b strings.Builder
	b.WriteString("From: dmarc@receiver.example\r\nTo: " + testDMARCRcpt + "\r\n" +
		"Subject: Report Domain: a.example Submitter: receiver.example Report-ID: <d1>\r\n" +
		"Message-ID: <d1@receiver.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nThis is a DMARC aggregate report.\r\n" +
		"--B\r\nContent-Type: " + mediaType + "\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"" + filename + "\"\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(attachment)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--B--\r\n")
	return []byte(b.String())
}

// failureMail is a DMARC failure report (RFC 6591 with the RFC 7489
// §7.3.1 fields) about a.example.
func failureMail(incidents int) []byte {
	return []byte(strings.ReplaceAll(`From: dmarc-failure@receiver.example
To: `+testRUFRcpt+`
Subject: DMARC failure report for a.example
Message-ID: <ruf-`+fmt.Sprint(incidents)+`@receiver.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ab"

--ab
Content-Type: text/plain

This is a DMARC failure report for a.example.
--ab
Content-Type: message/feedback-report

Feedback-Type: auth-failure
User-Agent: Receiver-ARF/2.0
Version: 1
Original-Mail-From: <bounce@a.example>
Arrival-Date: Wed, 15 Nov 2023 09:59:58 +0000
Source-IP: 192.0.2.25
Reported-Domain: a.example
Auth-Failure: dmarc
Identity-Alignment: none
DKIM-Domain: a.example
DKIM-Selector: s1
Delivery-Result: reject
Incidents: `+fmt.Sprint(incidents)+`
--ab
Content-Type: message/rfc822

From: billing@a.example
To: user@receiver.example
Subject: Your invoice

Pay now.
--ab--
`, "\n", "\r\n"))
}

// TestSMTPDMARC: DMARC aggregate (rua) and failure (ruf) reports by SMTP,
// acknowledged only once committed; duplicates, conflicts and damaged
// reports; TLS reports still accepted on their address.
func TestSMTPDMARC(t *testing.T) {
	t.Parallel()
	e := startSMTP(t, nil, nil, SMTPOpts{Resolver: mapResolver{}, DMARCRecipients: []string{testDMARCRcpt, testRUFRcpt}})
	ctx := context.Background()
	report := dmarcXML("Receiver", "agg-1", "a.example", 3, 5)

	// A gzipped aggregate report: 250 names the stored report, which is
	// committed when the reply comes.
	text, err := e.send(t, true, testDMARCRcpt, dmarcMail("application/gzip", "receiver.example!a.example!1!2.xml.gz", gzipped(t, report)))
	if err != nil {
		t.Fatalf("delivery: %v", err)
	}
	if !strings.Contains(text, "DMARC report stored") || !strings.Contains(text, "3 records, 15 messages") {
		t.Errorf("reply %q", text)
	}
	id := storedID(t, text)
	got, err := e.st.(store.Store).DMARCReportByID(ctx, id)
	if err != nil {
		t.Fatalf("report %d not committed at 250: %v", id, err)
	}
	if got.Source != SourceSMTP || got.OrgName != "Receiver" || got.ReportID != "agg-1" || got.Domain != "a.example" ||
		got.Records != 3 || got.Messages != 15 || got.Status != store.ReportOK || !strings.Contains(got.SourceDetail, "message-id=d1@receiver.example") {
		t.Errorf("stored %+v", got)
	}

	// The same report zipped: a duplicate of the same content.
	text, err = e.send(t, true, testDMARCRcpt, dmarcMail("application/zip", "r.zip", zipped(t, "r.xml", report)))
	if err != nil || !strings.Contains(text, "already received") || storedID(t, text) != id {
		t.Errorf("duplicate: %q, %v; want a duplicate of %d", text, err, id)
	}

	// Another report under the same identity: kept aside.
	text, err = e.send(t, true, testDMARCRcpt, dmarcMail("text/xml", "r.xml", dmarcXML("Receiver", "agg-1", "a.example", 2, 7)))
	if err != nil || !strings.Contains(text, "kept aside") {
		t.Fatalf("conflict: %q, %v", text, err)
	}
	aside, err := e.st.(store.Store).DMARCReportByID(ctx, storedID(t, text[:strings.Index(text, ":")]))
	if err != nil || aside.ConflictOf != id {
		t.Errorf("conflicting report %+v, %v; want ConflictOf %d", aside, err, id)
	}

	// A damaged report: kept as invalid with the reason, answered 250.
	damaged := report[:len(report)/2]
	text, err = e.send(t, true, testDMARCRcpt, dmarcMail("application/gzip", "r.xml.gz", gzipped(t, damaged)))
	if err != nil || !strings.Contains(text, "invalid DMARC report kept") {
		t.Fatalf("damaged: %q, %v", text, err)
	}
	bad, err := e.st.(store.Store).DMARCReportByID(ctx, storedID(t, text))
	if err != nil || bad.Status != store.ReportInvalid || bad.Error == "" || string(bad.Raw) != string(gzipped(t, damaged)) {
		t.Errorf("damaged report %+v, %v", bad, err)
	}
	// Compressed data that does not open, sent to the DMARC address.
	text, err = e.send(t, true, testDMARCRcpt, dmarcMail("application/gzip", "r.xml.gz", []byte("\x1f\x8b\x08\x00garbage")))
	if err != nil || !strings.Contains(text, "invalid DMARC report kept") {
		t.Errorf("corrupt gzip: %q, %v", text, err)
	}

	// A failure report to the ruf address.
	text, err = e.send(t, true, testRUFRcpt, failureMail(2))
	if err != nil || !strings.Contains(text, "DMARC failure report stored") {
		t.Fatalf("failure report: %q, %v", text, err)
	}
	f, err := e.st.(store.Store).DMARCFailureByID(ctx, storedID(t, text))
	if err != nil || f.Domain != "a.example" || f.AuthFailure != "dmarc" || f.Incidents != 2 || f.SourceIP != "192.0.2.25" {
		t.Errorf("failure report %+v, %v", f, err)
	}
	text, err = e.send(t, true, testRUFRcpt, failureMail(2))
	if err != nil || !strings.Contains(text, "already received") {
		t.Errorf("failure report again: %q, %v", text, err)
	}

	// A mail without a report to the DMARC address: refused, saying why.
	_, err = e.send(t, true, testDMARCRcpt, plainMail("hello"))
	if code, msg := smtpCode(err); code != 550 || !strings.Contains(msg, "no DMARC report") {
		t.Errorf("plain mail: %d %q", code, msg)
	}

	// TLS reports still go to their address.
	text, err = e.send(t, true, testRcpt, reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", "t-1", "a.example", 1, 0))))
	if err != nil || !strings.Contains(text, "report stored") {
		t.Errorf("TLS report: %q, %v", text, err)
	}

	// Every other recipient is refused, naming the accepted addresses.
	c := e.dial(t, true)
	if err := c.Mail("a@sender.example", nil); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"postmaster@reports.example.net", "dmarc@elsewhere.example"} {
		code, msg := smtpCode(c.Rcpt(rcpt, nil))
		if code != 550 || !strings.Contains(msg, testDMARCRcpt) || !strings.Contains(msg, testRUFRcpt) || !strings.Contains(msg, testRcpt) {
			t.Errorf("RCPT %s: %d %q", rcpt, code, msg)
		}
	}

	n, err := e.st.(store.Store).CountDMARCReports(ctx, store.DMARCFilter{})
	if err != nil || n != 4 {
		t.Errorf("%d aggregate reports stored (%v), want 4: the report, the one aside, two damaged", n, err)
	}
	// The rollups count the report once, not the one aside.
	rows, err := e.st.(store.Store).DMARCRollups(ctx, store.DMARCRollupQuery{Domain: "a.example", Since: time.Unix(0, 0)})
	if err != nil || len(rows) != 1 || rows[0].Messages != 15 {
		t.Errorf("rollups %+v, %v; want 15 messages", rows, err)
	}
	st := e.srv.ing.Stats().Outcomes
	for k, want := range map[OutcomeKey]int64{
		{store.KindDMARC, SourceSMTP, OutcomeStored}:           1,
		{store.KindDMARC, SourceSMTP, OutcomeDuplicate}:        1,
		{store.KindDMARC, SourceSMTP, OutcomeConflict}:         1,
		{store.KindDMARC, SourceSMTP, OutcomeInvalid}:          2,
		{store.KindDMARCFailure, SourceSMTP, OutcomeStored}:    1,
		{store.KindDMARCFailure, SourceSMTP, OutcomeDuplicate}: 1,
		{store.KindTLSRPT, SourceSMTP, OutcomeStored}:          1,
	} {
		if st[k] != want {
			t.Errorf("outcome %v: %d, want %d (all: %v)", k, st[k], want, st)
		}
	}
}

// TestImportDMARC: moat import of DMARC aggregate and failure reports in
// every shape (.xml, .xml.gz, .zip, .eml, mbox, Maildir, a directory),
// saying per file what became of each report.
func TestImportDMARC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rep := func(id string, records int) []byte { return dmarcXML("Importer", id, "a.example", records, 2) }
	mail := func(id string) []byte { return lf(dmarcMail("application/gzip", id+".xml.gz", gzipped(t, rep(id, 2)))) }
	writeFile(t, filepath.Join(dir, "a.xml"), rep("a", 1))
	writeFile(t, filepath.Join(dir, "b.xml.gz"), gzipped(t, rep("b", 2)))
	writeFile(t, filepath.Join(dir, "c.zip"), zipped(t, "c.xml", rep("c", 3)))
	writeFile(t, filepath.Join(dir, "d.eml"), mail("d"))
	writeFile(t, filepath.Join(dir, "ruf.eml"), lf(failureMail(4)))
	writeFile(t, filepath.Join(dir, "sub", "a-again.xml.gz"), gzipped(t, rep("a", 1))) // the content of a.xml
	writeFile(t, filepath.Join(dir, "sub", "a-other.xml"), rep("a", 5))                // a's identity, another content
	writeFile(t, filepath.Join(dir, "sub", "broken.xml.gz"), gzipped(t, rep("x", 3)[:300]))
	writeFile(t, filepath.Join(dir, "sub", "plain.xml"), []byte(`<?xml version="1.0"?><html><body>no</body></html>`))
	var mbox bytes.Buffer
	mbox.WriteString("From dmarc@receiver.example Mon Nov  2 10:00:00 2026\n")
	mbox.Write(mail("m1"))
	mbox.WriteString("\nFrom dmarc-failure@receiver.example Mon Nov  2 10:00:01 2026\n")
	mbox.Write(lf(failureMail(5)))
	writeFile(t, filepath.Join(dir, "archive.mbox"), mbox.Bytes())
	writeFile(t, filepath.Join(dir, "Maildir", "cur", "1:2,S"), mail("md1"))
	if err := os.MkdirAll(filepath.Join(dir, "Maildir", "new"), 0o755); err != nil {
		t.Fatal(err)
	}

	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	// One worker: the files are stored in the order of the walk, so a.xml
	// holds the identity that a-again repeats and a-other conflicts with
	// (with several, whichever commits first holds it).
	stats, err := Import(context.Background(), ing, []string{dir}, ImportOpts{Workers: 1})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	// Stored: a, b, c, d, m1, md1, a-other (aside), broken (invalid);
	// failure reports ruf and mbox#2; a-again a duplicate.
	if stats.Files != 11 || stats.Messages != 5 || stats.Reports != 10 || stats.Duplicates != 1 || stats.Invalid != 1 ||
		stats.Conflicts != 1 || stats.Kinds[store.KindDMARC] != 8 || stats.Kinds[store.KindDMARCFailure] != 2 || len(stats.Errors) != 0 {
		t.Errorf("stats %+v", stats)
	}
	if len(stats.NotReports) != 1 || !strings.HasSuffix(stats.NotReports[0].Path, "plain.xml") || !strings.Contains(stats.NotReports[0].Reason, "feedback") {
		t.Errorf("not reports %+v, want plain.xml without <feedback>", stats.NotReports)
	}
	byFile := map[string]ImportedReport{}
	for _, r := range stats.Stored {
		rel, _ := filepath.Rel(dir, r.Path)
		byFile[rel] = r
	}
	for file, want := range map[string]struct {
		kind, outcome string
		records       int64
	}{
		"a.xml": {store.KindDMARC, OutcomeStored, 1}, "b.xml.gz": {store.KindDMARC, OutcomeStored, 2},
		"c.zip": {store.KindDMARC, OutcomeStored, 3}, "d.eml": {store.KindDMARC, OutcomeStored, 2},
		"ruf.eml": {store.KindDMARCFailure, OutcomeStored, 1}, "sub/a-again.xml.gz": {store.KindDMARC, OutcomeDuplicate, 1},
		"sub/a-other.xml": {store.KindDMARC, OutcomeConflict, 5}, "sub/broken.xml.gz": {store.KindDMARC, OutcomeInvalid, 0},
		"archive.mbox#1": {store.KindDMARC, OutcomeStored, 2}, "archive.mbox#2": {store.KindDMARCFailure, OutcomeStored, 1},
		"Maildir/cur/1:2,S": {store.KindDMARC, OutcomeStored, 2},
	} {
		got, ok := byFile[file]
		if !ok || got.Kind != want.kind || got.Outcome != want.outcome || got.Records != want.records || got.ID == 0 {
			t.Errorf("%s: %+v, want %v", file, got, want)
		}
	}
	if r := byFile["sub/a-other.xml"]; r.ConflictOf != byFile["a.xml"].ID {
		t.Errorf("conflict of %d, want %d", r.ConflictOf, byFile["a.xml"].ID)
	}
	if r := byFile["sub/broken.xml.gz"]; !strings.Contains(r.Error, "truncated") {
		t.Errorf("broken report: %q, want the reason", r.Error)
	}
	got, err := st.DMARCReportByID(context.Background(), byFile["archive.mbox#1"].ID)
	if err != nil || got.Source != SourceImport || got.SourceDetail != filepath.Join(dir, "archive.mbox")+"#1" {
		t.Errorf("mbox report %+v, %v", got, err)
	}
}
