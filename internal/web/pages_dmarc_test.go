package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"html"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dmarcstats"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
)

// dmarcRec is one record of a test DMARC aggregate report: the policy
// evaluation and the auth results of one source.
type dmarcRec struct {
	ip                 string
	count              int
	dkim, spf          string // policy_evaluated
	dkimDomain, dkimRS string // auth_results dkim domain and result
	spfDomain, spfRS   string // auth_results spf domain and result
	envelope           string
	reason             string // an override reason type
}

// dmarcFeedback writes an aggregate report of reporter about domain for
// the day daysAgo days before testNow.
func dmarcFeedback(reporter, reportID, domain string, daysAgo int, recs ...dmarcRec) []byte {
	start := day(testNow).AddDate(0, 0, -daysAgo)
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<feedback><report_metadata><org_name>%s</org_name><email>dmarc@%s.test</email><report_id>%s</report_id>
<date_range><begin>%d</begin><end>%d</end></date_range></report_metadata>
<policy_published><domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct></policy_published>
`, reporter, strings.ToLower(strings.Fields(reporter)[0]), reportID, start.Unix(), start.Add(24*time.Hour-time.Second).Unix(), domain)
	for _, r := range recs {
		fmt.Fprintf(&b, `<record><row><source_ip>%s</source_ip><count>%d</count><policy_evaluated><disposition>none</disposition>`+
			`<dkim>%s</dkim><spf>%s</spf>`, r.ip, r.count, r.dkim, r.spf)
		if r.reason != "" {
			fmt.Fprintf(&b, `<reason><type>%s</type></reason>`, r.reason)
		}
		fmt.Fprintf(&b, `</policy_evaluated></row><identifiers><header_from>%s</header_from>`, domain)
		if r.envelope != "" {
			fmt.Fprintf(&b, `<envelope_from>%s</envelope_from>`, r.envelope)
		}
		fmt.Fprintf(&b, `</identifiers><auth_results><dkim><domain>%s</domain><selector>s1</selector><result>%s</result></dkim>`+
			`<spf><domain>%s</domain><scope>mfrom</scope><result>%s</result></spf></auth_results></record>`+"\n", r.dkimDomain, r.dkimRS, r.spfDomain, r.spfRS)
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}

// The sources of the DMARC tests: one of each class.
var (
	recCompliant = dmarcRec{ip: "203.0.113.10", count: 50, dkim: "pass", spf: "pass", dkimDomain: "acme.example", dkimRS: "pass", spfDomain: "acme.example", spfRS: "pass"}
	// Amazon SES signing with its own domain and its own return path.
	recSES   = dmarcRec{ip: "54.240.0.5", count: 20, dkim: "fail", spf: "fail", dkimDomain: "amazonses.com", dkimRS: "pass", spfDomain: "amazonses.com", spfRS: "pass", envelope: "amazonses.com"}
	recSpoof = dmarcRec{ip: "198.51.100.77", count: 7, dkim: "fail", spf: "fail", dkimDomain: "evil.example", dkimRS: "fail", spfDomain: "evil.example", spfRS: "fail"}
	// Forwarded: the signature broke on the way, the reporter says so.
	recForward = dmarcRec{ip: "192.0.2.200", count: 5, dkim: "fail", spf: "fail", dkimDomain: "acme.example", dkimRS: "fail", spfDomain: "forwarder.example", spfRS: "fail", reason: "forwarded"}
)

// submitDMARC stores an aggregate report through the intake.
func (e *env) submitDMARC(raw []byte) intake.Result {
	e.t.Helper()
	res, err := e.ing.SubmitDMARC(context.Background(), intake.Submission{Source: intake.SourceImport, SourceDetail: "fixture", Data: raw})
	if err != nil {
		e.t.Fatalf("DMARC fixture: %v", err)
	}
	return res
}

// dmarcEnv is pagesEnv with DMARC reports about acme.example (sources of
// every class, two reporters, and one report 60 days old) and
// other-acme.example, and reverse DNS and SPF results in the cache.
func dmarcEnv(t *testing.T) *env {
	e := pagesEnv(t)
	e.submitDMARC(dmarcFeedback("Google LLC", "g-1", "acme.example", 2, recCompliant, recSES, recSpoof, recForward))
	ses := recSES
	ses.count = 4
	e.submitDMARC(dmarcFeedback("Yahoo Inc", "y-1", "acme.example", 5, dmarcRec{ip: recCompliant.ip, count: 30, dkim: "pass", spf: "pass",
		dkimDomain: "acme.example", dkimRS: "pass", spfDomain: "acme.example", spfRS: "pass"}, ses))
	old := recSpoof
	old.count = 1000
	e.submitDMARC(dmarcFeedback("Google LLC", "g-old", "acme.example", 60, old))
	e.submitDMARC(dmarcFeedback("Google LLC", "g-2", "other-acme.example", 3, dmarcRec{ip: "203.0.113.99", count: 3, dkim: "fail", spf: "fail",
		dkimDomain: "other-acme.example", dkimRS: "fail", spfDomain: "other-acme.example", spfRS: "fail"}))
	ctx := context.Background()
	if err := e.st.PutPTRs(ctx, []store.PTRRecord{{IP: recSES.ip, Names: []string{"a1-2.smtp-out.amazonses.com"},
		Confirmed: "a1-2.smtp-out.amazonses.com", CheckedAt: testNow, ExpiresAt: time.Now().AddDate(1, 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutSPFAuths(ctx, []store.SPFAuth{{Domain: "acme.example", SourceIP: recCompliant.ip, Day: testNow, Result: "pass", CheckedAt: testNow}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// cliAnalyzer is the Analyzer `moat reports dmarc senders --no-dns`
// makes: over the operator's store.
func cliAnalyzer(t *testing.T, e *env) *senders.Analyzer {
	t.Helper()
	cat, err := senders.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return senders.NewAnalyzer(e.st, e.st, nil, cat, senders.Options{CachedOnly: true, SPF: senders.SPFOptions{Now: func() time.Time { return testNow }}})
}

func pctText(a, b int64) string { return fmt.Sprintf("%.2f%%", 100*float64(a)/float64(b)) }

// idText returns the text of the element with id in body.
func idText(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		t.Errorf("no element %s", id)
		return ""
	}
	return m[1]
}

// TestDMARCSummaryPages: the totals and the chart's table of /dmarc and
// /domains/x/dmarc are those of dmarcstats.Summarize (what `moat reports
// dmarc summary` prints), over the period asked for.
func TestDMARCSummaryPages(t *testing.T) {
	t.Parallel()
	e := dmarcEnv(t)
	ctx := context.Background()
	since := day(testNow).AddDate(0, 0, -30)
	for _, tc := range []struct {
		path, domain string
		since        time.Time
		messages     int64
	}{
		{"/dmarc", "", since, 116 + 3},
		{"/domains/acme.example/dmarc", "acme.example", since, 116},
		{"/domains/acme.example/dmarc?since=90d", "acme.example", day(testNow).AddDate(0, 0, -90), 1116},
		{"/domains/acme.example/dmarc?since=2026-05-16", "acme.example", day(testNow).AddDate(0, 0, -4), 50 + 20 + 7 + 5},
	} {
		sum, err := dmarcstats.Summarize(ctx, e.st, dmarcstats.Query{Domain: tc.domain, Since: tc.since, Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		if sum.TotalMessages != tc.messages {
			t.Fatalf("%s: the summary counts %d messages, the fixtures %d", tc.path, sum.TotalMessages, tc.messages)
		}
		for _, who := range []string{owner, viewer} {
			r := e.do(who, "GET", tc.path, nil)
			if r.Code != http.StatusOK {
				t.Fatalf("%s GET %s: %d", who, tc.path, r.Code)
			}
			for id, want := range map[string]string{
				"total-messages": formatInt(sum.TotalMessages),
				"dmarc-pass":     pctText(sum.DMARCPass, sum.TotalMessages),
				"dkim-pass":      pctText(sum.DKIMPass, sum.TotalMessages),
				"spf-pass":       pctText(sum.SPFPass, sum.TotalMessages),
			} {
				if got := idText(t, r.Body, id); got != want {
					t.Errorf("%s %s: %q, want %q", tc.path, id, got, want)
				}
			}
			r.has(t, "data:image/svg&#43;xml;base64,", `href="/dmarc/failures"`, `href="/dmarc"`)
		}
	}
	// The chart's numbers: the day of the Google report.
	r := e.do(owner, "GET", "/domains/acme.example/dmarc", nil)
	d := day(testNow).AddDate(0, 0, -2).Format(time.DateOnly)
	if !regexp.MustCompile(`<th scope="row">` + d + `</th><td class="num">82</td><td class="num">50</td><td class="num">32</td>`).MatchString(r.Body) {
		t.Errorf("the chart table lacks %s: 82 messages, 50 passing, 32 failing", d)
	}
	// Every domain: a row per domain, linked.
	r = e.do(owner, "GET", "/dmarc", nil)
	r.has(t, `href="/domains/acme.example/dmarc?since=30d"`, `href="/domains/other-acme.example/dmarc?since=30d"`, "DMARC")
	// A bad period is said, and the default shown.
	r = e.do(owner, "GET", "/dmarc?since=yesterday", nil)
	if r.Code != http.StatusOK || !strings.Contains(r.Body, "is not one") || idText(t, r.Body, "total-messages") != "119" {
		t.Errorf("since=yesterday: %d", r.Code)
	}
}

// TestDMARCSenders: the sources of a domain by class, as senders.Analyzer
// (what `moat reports dmarc senders --no-dns` prints) classifies them:
// tab counts, the rows of each tab, the rates, SPF authorization and
// fixes.
func TestDMARCSenders(t *testing.T) {
	t.Parallel()
	e := dmarcEnv(t)
	since := day(testNow).AddDate(0, 0, -30)
	rep, err := cliAnalyzer(t, e).Senders(context.Background(), senders.Query{Domain: "acme.example", Since: since})
	if err != nil {
		t.Fatal(err)
	}
	want := map[senders.Class]string{senders.Compliant: recCompliant.ip, senders.Misconfigured: recSES.ip, senders.Unknown: recSpoof.ip, senders.Forwarded: recForward.ip}
	for cl, ip := range want {
		if rep.SourcesByClass[cl] != 1 {
			t.Fatalf("the fixtures do not give one %s source: %v", cl, rep.SourcesByClass)
		}
		for _, s := range rep.Sources {
			if s.IP == ip && s.Class != cl {
				t.Fatalf("%s is %s, not %s", ip, s.Class, cl)
			}
		}
	}
	r := e.do(viewer, "GET", "/domains/acme.example/dmarc", nil)
	if r.Code != http.StatusOK {
		t.Fatalf("GET: %d", r.Code)
	}
	r.has(t, fmt.Sprintf(">All (%d)</a>", len(rep.Sources)))
	for _, cl := range senders.Classes {
		label := strings.ToUpper(string(cl[:1])) + string(cl[1:])
		r.has(t, fmt.Sprintf(`data-class="%s">%s (%d)</a>`, cl, label, rep.SourcesByClass[cl]))
	}
	for _, s := range rep.Sources {
		r.has(t, "<code>"+s.IP+"</code>")
	}
	// The Amazon SES row: the service, reverse DNS and organizational
	// domain, rates, and the fix senders gives.
	var ses *senders.Source
	for _, s := range rep.Sources {
		if s.IP == recSES.ip {
			ses = s
		}
	}
	if ses.Service == nil || ses.Service.Name != "Amazon SES" || len(ses.Fixes) == 0 {
		t.Fatalf("senders did not recognize Amazon SES: %+v", ses)
	}
	row := regexp.MustCompile(`(?s)<tr class="class-misconfigured">(.*?)</tr>`).FindStringSubmatch(r.Body)
	if row == nil {
		t.Fatal("no misconfigured row")
	}
	for _, s := range []string{"Amazon SES", recSES.ip, "a1-2.smtp-out.amazonses.com", ">amazonses.com<", ">24<", ">0.00%<", "not evaluated yet",
		html.EscapeString(ses.Fixes[0].Text)} {
		if !strings.Contains(row[1], s) {
			t.Errorf("the Amazon SES row lacks %q:\n%s", s, row[1])
		}
	}
	// DKIM and SPF pass rates per source, from the summary by source.
	row = regexp.MustCompile(`(?s)<tr class="class-forwarded">(.*?)</tr>`).FindStringSubmatch(r.Body)
	if row == nil || !strings.Contains(row[1], `<td class="num">0.00%</td>
  <td class="num">0.00%</td>
  <td class="num">0.00%</td>`) || !strings.Contains(row[1], ">unknown<") {
		t.Errorf("the forwarded row: %v", row)
	}
	row = regexp.MustCompile(`(?s)<tr class="class-compliant">(.*?)</tr>`).FindStringSubmatch(r.Body)
	if row == nil || !strings.Contains(row[1], "yes (pass)") || !strings.Contains(row[1], ">80<") {
		t.Errorf("the compliant row: %v", row)
	}
	for _, f := range rep.Fixes {
		r.has(t, html.EscapeString(f.Text))
	}
	// One tab: only its sources.
	r = e.do(viewer, "GET", "/domains/acme.example/dmarc?class=unknown", nil)
	r.has(t, "<code>"+recSpoof.ip+"</code>", `aria-current="page" data-class="unknown"`)
	r.lacks(t, "<code>"+recSES.ip+"</code>", "<code>"+recCompliant.ip+"</code>")
	// Services: Amazon SES and the unrecognized ones.
	r.has(t, `<th scope="row">Amazon SES</th><td class="num">1</td><td class="num">24</td>`)
}

// TestDMARCSourcesCut: a domain with more sources than tableRows shows
// the first ones and a link to all.
func TestDMARCSourcesCut(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	var recs []dmarcRec
	for i := range tableRows + 5 {
		r := recSpoof
		r.ip, r.count = fmt.Sprintf("198.51.%d.%d", 100+i/200, i%200+1), 1+i
		recs = append(recs, r)
	}
	e.submitDMARC(dmarcFeedback("Google LLC", "many", "acme.example", 1, recs...))
	r := e.do(owner, "GET", "/domains/acme.example/dmarc", nil)
	if n := strings.Count(r.Body, `<tr class="class-unknown">`); n != tableRows {
		t.Errorf("%d rows, want %d", n, tableRows)
	}
	r.has(t, fmt.Sprintf("Show all %d", tableRows+5))
	r = e.do(owner, "GET", "/domains/acme.example/dmarc?since=30d&all=1", nil)
	if n := strings.Count(r.Body, `<tr class="class-unknown">`); n != tableRows+5 {
		t.Errorf("all: %d rows, want %d", n, tableRows+5)
	}
}

// TestDMARCImpact: the impact page shows senders.Impact's numbers (what
// `moat reports dmarc impact` prints) for each policy, pct and t=y.
func TestDMARCImpact(t *testing.T) {
	t.Parallel()
	e := dmarcEnv(t)
	a := cliAnalyzer(t, e)
	since := day(testNow).AddDate(0, 0, -30)
	for _, tc := range []struct {
		query string
		pol   senders.Policy
	}{
		{"", senders.Policy{P: "reject", Pct: 100}},
		{"?policy=quarantine&pct=100", senders.Policy{P: "quarantine", Pct: 100}},
		{"?policy=reject&pct=33", senders.Policy{P: "reject", Pct: 33}},
		{"?policy=reject&pct=100&testing=1", senders.Policy{P: "reject", Pct: 100, Testing: true}},
	} {
		im, err := a.Impact(context.Background(), senders.Query{Domain: "acme.example", Since: since}, tc.pol)
		if err != nil {
			t.Fatal(err)
		}
		if im.Failing != 20+7+5+4 || im.Forwarded != 5 {
			t.Fatalf("%+v: the fixtures give %d failing, %d forwarded", tc.pol, im.Failing, im.Forwarded)
		}
		r := e.do(viewer, "GET", "/domains/acme.example/dmarc/impact"+tc.query, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("%s: %d", tc.query, r.Code)
		}
		for id, n := range map[string]int64{"impact-messages": im.Messages, "impact-failing": im.Failing, "impact-rejected": im.Rejected,
			"impact-quarantined": im.Quarantined, "impact-forwarded": im.Forwarded, "impact-legit": 24, "impact-unknown": 7} {
			if got := idText(t, r.Body, id); got != formatInt(n) {
				t.Errorf("%s %s: %q, want %d", tc.query, id, got, n)
			}
		}
		for _, g := range im.Groups {
			name := g.ServiceName
			if name == "" {
				name = "unknown"
			}
			r.has(t, fmt.Sprintf(`<th scope="row">%s</th><td>%s</td><td class="num">%d</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td>`,
				g.Class, name, g.Sources, formatInt(g.Failing), formatInt(g.Rejected), formatInt(g.Quarantined)))
		}
		for _, s := range im.Sources {
			r.has(t, fmt.Sprintf(`<td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>`,
				formatInt(s.Failing.Total()), formatInt(s.Rejected), formatInt(s.Quarantined)), "<code>"+s.IP+"</code>")
		}
		for _, f := range im.Fixes {
			r.has(t, html.EscapeString(f.Text))
		}
	}
	// Values that are no policy are said; the default is shown.
	for _, q := range []string{"?policy=none", "?pct=0", "?pct=101", "?pct=x"} {
		r := e.do(viewer, "GET", "/domains/acme.example/dmarc/impact"+q, nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, `class="error"`) || idText(t, r.Body, "impact-rejected") != "36" {
			t.Errorf("%s: %d", q, r.Code)
		}
	}
}

// postUpload uploads file as name to /dmarc/upload as who.
func (e *env) postUpload(who, name string, file []byte, header ...string) *resp {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if file != nil {
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write(file)
	}
	_ = mw.Close()
	req := httptest.NewRequest("POST", "/dmarc/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.AddCookie(&http.Cookie{Name: "moat_session", Value: e.cookies[who]})
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return &resp{Code: w.Code, Body: w.Body.String(), Header: w.Header()}
}

// TestDMARCUpload: a report file uploaded on the dashboard goes through
// the intake as API uploads do: stored, a duplicate the second time,
// gzip and mail accepted, a damaged report kept as invalid with its
// reason, a conflict kept aside, garbage and other organizations'
// reports refused with nothing stored; viewers may not upload.
func TestDMARCUpload(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	e.org("other", "")
	e.domain("other.example", "other")
	ctx := context.Background()
	count := func() int64 {
		n, err := e.st.CountDMARCReports(ctx, store.DMARCFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	good := dmarcFeedback("Google LLC", "up-1", "acme.example", 1, recCompliant, recSES)

	r := e.postUpload(admin, "report.xml", good)
	if r.Code != http.StatusOK {
		t.Fatalf("upload: %d %s", r.Code, r.Body)
	}
	r.has(t, `outcome-stored">stored<`, "up-1", "acme.example", `<td class="num">2</td>`, `<td class="num">70</td>`)
	id := regexp.MustCompile(`href="/dmarc/reports/(\d+)">report`).FindStringSubmatch(r.Body)
	if id == nil {
		t.Fatal("no link to the stored report")
	}
	if count() != 1 {
		t.Fatalf("%d reports stored", count())
	}
	rep, err := e.st.DMARCReportByID(ctx, mustID(t, id[1]))
	if err != nil || rep.Source != intake.SourceAPI || !strings.Contains(rep.SourceDetail, admin) || !bytes.Equal(rep.Raw, good) || rep.MediaType != "application/xml" {
		t.Fatalf("stored: %+v, %v", rep, err)
	}
	if s := e.do(owner, "GET", "/domains/acme.example/dmarc", nil); idText(t, s.Body, "total-messages") != "70" {
		t.Error("the uploaded report is not counted")
	}

	r = e.postUpload(admin, "report.xml", good)
	r.has(t, `outcome-duplicate">duplicate<`, "report "+id[1])
	if count() != 1 {
		t.Error("a duplicate was stored")
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(dmarcFeedback("Yahoo Inc", "up-gz", "acme.example", 2, recSpoof))
	_ = zw.Close()
	r = e.postUpload(owner, "google.com!acme.example!1!2.xml.gz", gz.Bytes())
	r.has(t, `outcome-stored">stored<`, "up-gz")

	mail := "From: dmarc@yahoo.test\r\nTo: dmarc@reports.sts.moat.test\r\nSubject: Report Domain: acme.example\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: application/xml\r\nContent-Disposition: attachment; filename=r.xml\r\n\r\n" +
		string(dmarcFeedback("Yahoo Inc", "up-mail", "acme.example", 3, recForward))
	r = e.postUpload(owner, "report.eml", []byte(mail))
	r.has(t, `outcome-stored">stored<`, "up-mail")

	// A failure report (RFC 6591): stored as one, linked to the failure
	// reports' page.
	failure := strings.ReplaceAll(`From: dmarc-failure@receiver.example
To: dmarc@reports.sts.moat.test
Subject: DMARC failure report for acme.example
Message-ID: <ruf-1@receiver.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ab"

--ab
Content-Type: text/plain

This is a DMARC failure report for acme.example.
--ab
Content-Type: message/feedback-report

Feedback-Type: auth-failure
User-Agent: Receiver-ARF/2.0
Version: 1
Arrival-Date: Tue, 19 May 2026 09:59:58 +0000
Source-IP: 192.0.2.25
Reported-Domain: acme.example
Auth-Failure: dmarc
Identity-Alignment: none
Delivery-Result: reject
--ab
Content-Type: message/rfc822

From: billing@acme.example
Subject: Your invoice

Pay now.
--ab--
`, "\n", "\r\n")
	r = e.postUpload(owner, "failure.eml", []byte(failure))
	r.has(t, `outcome-stored">stored<`, "failure report", `href="/dmarc/failures"`)
	if l, err := e.st.DMARCFailures(ctx, store.DMARCFilter{Domain: "acme.example"}); err != nil || len(l) != 1 {
		t.Errorf("failure reports stored: %d, %v", len(l), err)
	}

	// Damaged: the header reads, the records do not.
	damaged := good[:bytes.Index(good, []byte("<record>"))+40]
	damaged = append(bytes.Replace(damaged, []byte("up-1"), []byte("up-bad"), 1), []byte("<<<")...)
	r = e.postUpload(owner, "bad.xml", damaged)
	r.has(t, `outcome-invalid">invalid<`, "up-bad")
	if count() != 4 {
		t.Errorf("%d reports, want 4: the invalid one is kept", count())
	}
	l := e.do(viewer, "GET", "/dmarc/reports?status=invalid", nil)
	l.has(t, "up-bad", `outcome-invalid">invalid</span>: `)
	l.lacks(t, "up-gz")

	// The same identity with another content: kept aside.
	conflict := dmarcFeedback("Google LLC", "up-1", "acme.example", 1, recCompliant)
	r = e.postUpload(owner, "again.xml", conflict)
	r.has(t, `outcome-conflict">conflict<`, "the same report id and period as <a href=\"/dmarc/reports/"+id[1]+"\">")

	before := count()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"junk.xml", []byte("hello, this is no report"), "is not a DMARC report"},
		{"other.xml", dmarcFeedback("Google LLC", "up-other", "other.example", 1, recCompliant), `a report about &#34;other.example&#34;, which is not hosted in your organization`},
		{"tls.json", []byte(`{"organization-name":"X","date-range":{"start-datetime":"2026-05-18T00:00:00Z","end-datetime":"2026-05-18T23:59:59Z"},"report-id":"t","policies":[]}`), "holds a TLS report"},
		{"empty.xml", []byte("  \n"), "The file is empty."},
		{"", nil, "Choose a file to upload."},
	} {
		r := e.postUpload(owner, tc.name, tc.data)
		if r.Code != http.StatusUnprocessableEntity || !strings.Contains(r.Body, tc.want) {
			t.Errorf("%s: %d, want 422 saying %q", tc.name, r.Code, tc.want)
		}
	}
	big := append(bytes.Repeat([]byte(" "), 300<<10), good...)
	if r := e.postUpload(owner, "big.xml", big); r.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("big: %d", r.Code)
	}
	if count() != before {
		t.Error("a refused upload stored something")
	}
	// htmx: the outcome swapped in place, answered 200.
	r = e.postUpload(owner, "junk.xml", []byte("nothing"), "HX-Request", "true")
	if r.Code != http.StatusOK || strings.HasPrefix(r.Body, "<!doctype html>") || !strings.Contains(r.Body, `id="upload"`) {
		t.Errorf("htmx upload: %d", r.Code)
	}
	// A viewer has no form and may not post.
	if r := e.postUpload(viewer, "report.xml", good); r.Code != http.StatusForbidden {
		t.Errorf("viewer upload: %d", r.Code)
	}
	e.do(viewer, "GET", "/dmarc/reports", nil).lacks(t, `action="/dmarc/upload"`)
	e.do(admin, "GET", "/dmarc/reports", nil).has(t, `action="/dmarc/upload"`, `enctype="multipart/form-data"`)
	// Every upload is in the intake ledger, with its kind.
	led := e.do(viewer, "GET", "/intake?kind=dmarc", nil)
	led.has(t, "DMARC aggregate", `href="/dmarc/reports/`+id[1]+`"`, "dashboard upload by "+admin, `outcome-conflict">conflict`)
	led.lacks(t, "Google LLC-", "failure report 1")
	led = e.do(viewer, "GET", "/intake?kind=dmarc-failure", nil)
	led.has(t, `<td class="kind-dmarc-failure">DMARC failure</td>`, `<a href="/dmarc/failures">failure report`)
	led.lacks(t, "up-gz")
}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDMARCReportPages: the list of aggregate reports, paginated, and one
// report with its status, warnings and the link to its bytes.
func TestDMARCReportPages(t *testing.T) {
	t.Parallel()
	e := dmarcEnv(t)
	r := e.do(viewer, "GET", "/dmarc/reports", nil)
	if r.Code != http.StatusOK {
		t.Fatalf("list: %d", r.Code)
	}
	r.has(t, "Reports 1–4 of 4", "g-1", "y-1", "g-old", "g-2", "Yahoo Inc", "other-acme.example")
	r = e.do(viewer, "GET", "/dmarc/reports?domain=other-acme.example", nil)
	r.has(t, "g-2", "Reports 1–1 of 1")
	r.lacks(t, "y-1")
	// A report with a warning: an unknown element is accepted and said.
	raw := bytes.Replace(dmarcFeedback("Warn Corp", "w-1", "acme.example", 1, recCompliant), []byte("<report_metadata>"), []byte("<report_metadata><x_extra>1</x_extra>"), 1)
	res := e.submitDMARC(raw)
	rep, err := e.st.DMARCReportByID(context.Background(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := e.do(viewer, "GET", "/dmarc/reports/"+itoa(res.ID), nil)
	if p.Code != http.StatusOK {
		t.Fatalf("report: %d", p.Code)
	}
	p.has(t, "Warn Corp", "w-1", `href="/domains/acme.example/dmarc"`, "p=none", `href="/api/v1/reports/dmarc/`+itoa(res.ID)+`/raw"`, ">"+rep.Status+"<")
	for _, w := range rep.Warnings {
		p.has(t, html.EscapeString(w))
	}
	if len(rep.Warnings) == 0 || rep.Status != store.ReportWarnings {
		t.Errorf("the fixture has no warnings: %+v", rep)
	}
	// The raw link works with the session.
	if raw := e.do(viewer, "GET", "/api/v1/reports/dmarc/"+itoa(res.ID)+"/raw", nil); raw.Code != http.StatusOK || raw.Body != string(rep.Raw) {
		t.Errorf("raw: %d", raw.Code)
	}
	if r := e.do(viewer, "GET", "/dmarc/reports/999999", nil); r.Code != http.StatusNotFound {
		t.Errorf("no such report: %d", r.Code)
	}
	// Pages of 100.
	for i := range dmarcPageSize + 3 {
		e.submitDMARC(dmarcFeedback("Bulk Corp", fmt.Sprintf("bulk-%d", i), "acme.example", 1+i%20, recCompliant))
	}
	r = e.do(viewer, "GET", "/dmarc/reports", nil)
	if n := strings.Count(r.Body, `<td><a href="/dmarc/reports/`); n != dmarcPageSize {
		t.Errorf("%d rows on the first page", n)
	}
	older := regexp.MustCompile(`<a href="([^"]+)" rel="next">Older</a>`).FindStringSubmatch(r.Body)
	if older == nil {
		t.Fatal("no link to the older page")
	}
	r = e.do(viewer, "GET", html.UnescapeString(older[1]), nil)
	if n := strings.Count(r.Body, `<td><a href="/dmarc/reports/`); n != 8 {
		t.Errorf("%d rows on the second page, want 8", n)
	}
	r.has(t, "Reports 101–108 of 108", ">Newer</a>")
}

// TestDMARCRecordsAndNav: the records page shows the rua and ruf address
// with copy buttons and says whether Moat answers its authorization; the
// DMARC pages are in the navigation.
func TestDMARCRecordsAndNav(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	r := e.do(viewer, "GET", "/domains/acme.example/setup", nil)
	r.has(t, `<code id="dmarc-tags">rua=mailto:dmarc@reports.sts.moat.test; ruf=mailto:dmarc@reports.sts.moat.test</code>`, `data-copy="dmarc-tags"`,
		`data-copy="dmarc-record"`, "acme.example._report._dmarc.reports.sts.moat.test.", "Moat's DNS server answers")
	r = e.do(viewer, "GET", "/", nil)
	r.has(t, `<a href="/dmarc" >DMARC</a>`)
	r = e.do(viewer, "GET", "/dmarc", nil)
	r.has(t, `<a href="/dmarc" aria-current="page">DMARC</a>`, `<a href="/dmarc/failures"`)
	e.do(viewer, "GET", "/domains/acme.example", nil).has(t, `href="/domains/acme.example/dmarc"`)
}

// BenchmarkDMARCPages: the DMARC pages of a domain with 30 daily reports
// of 2,000 sources each (60,000 records in the rollups) and 100 more
// domains' reports beside it.
func BenchmarkDMARCPages(b *testing.B) {
	e := newEnv(b)
	e.org("acme", "")
	e.user(owner, "acme", store.RoleOwner)
	e.domain("acme.example", "acme")
	for i := range 30 {
		recs := make([]dmarcRec, 0, 2000)
		for j := range 2000 {
			r := recSpoof
			if j%3 == 0 {
				r = recCompliant
			}
			r.ip, r.count = fmt.Sprintf("10.%d.%d.%d", j/65536, j/256%256, j%256+1), 1+j%7
			recs = append(recs, r)
		}
		e.submitDMARC(dmarcFeedback("Google LLC", fmt.Sprintf("big-%d", i), "acme.example", 1+i, recs...))
	}
	for i := range 100 {
		d := fmt.Sprintf("d%d.example", i)
		e.domain(d, "acme")
		e.submitDMARC(dmarcFeedback("Google LLC", "d-"+d, d, 1+i%30, recCompliant, recSES))
	}
	for _, path := range []string{"/dmarc", "/domains/acme.example/dmarc", "/domains/acme.example/dmarc/impact", "/dmarc/reports"} {
		b.Run(strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_"), func(b *testing.B) {
			for b.Loop() {
				if r := e.do(owner, "GET", path, nil); r.Code != http.StatusOK {
					b.Fatalf("%s: %d", path, r.Code)
				}
			}
		})
	}
}
