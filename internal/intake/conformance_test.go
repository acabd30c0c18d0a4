package intake

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-message"

	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

// corpora is the real-world sample collection beside the repository.
const corpora = "../../../shared/corpora"

// tlsrptCorpusDirs hold real TLS-RPT reports (JSON files and mails).
var tlsrptCorpusDirs = []string{
	"parsedmarc/samples/smtp_tls",
	"mox/testdata/tlsreports",
	"stalwart-mail-auth/resources/tlsrpt",
	"cry-inc-dmarc-report-viewer/testdata/smtp-tls-reports",
}

// corpusFile is one TLS-RPT sample with its report decoded independently
// of internal/tlsrpt (go-message for the mail, encoding/json for the
// report).
type corpusFile struct {
	path   string
	mail   bool
	raw    []byte // the file
	report []byte // the report as a sender sent it (attachment bytes for a mail)
	js     []byte // the report JSON, decompressed
}

func corpusFiles(t *testing.T) []corpusFile {
	t.Helper()
	if _, err := os.Stat(corpora); err != nil {
		t.Skipf("SKIP: real-world corpora not found at %s (%v); conformance over real reports not checked", corpora, err)
	}
	var files []corpusFile
	for _, dir := range tlsrptCorpusDirs {
		ents, err := os.ReadDir(filepath.Join(corpora, dir))
		if err != nil {
			t.Fatalf("corpus folder %s: %v", dir, err)
		}
		for _, e := range ents {
			ext := filepath.Ext(e.Name())
			if ext != ".json" && ext != ".eml" {
				continue
			}
			p := filepath.Join(corpora, dir, e.Name())
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f := corpusFile{path: p, mail: ext == ".eml", raw: raw, report: raw}
			if f.mail {
				f.report = mailReport(t, p, raw)
			}
			f.js = gunzipIf(t, p, f.report)
			files = append(files, f)
		}
	}
	if len(files) < 15 {
		t.Fatalf("found only %d TLS-RPT samples in the corpora; the folder layout changed?", len(files))
	}
	return files
}

// mailReport finds the report attachment of a mail with go-message.
func mailReport(t *testing.T, path string, raw []byte) []byte {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		t.Fatalf("%s: go-message: %v", path, err)
	}
	var found []byte
	var walk func(e *message.Entity)
	walk = func(e *message.Entity) {
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil && !message.IsUnknownCharset(err) {
					t.Fatalf("%s: part: %v", path, err)
				}
				walk(p)
			}
		}
		mt, _, _ := e.Header.ContentType()
		if strings.HasPrefix(mt, "application/tlsrpt") && found == nil {
			b, err := io.ReadAll(e.Body)
			if err != nil {
				t.Fatalf("%s: read %s part: %v", path, mt, err)
			}
			found = b
		}
	}
	walk(ent)
	if found == nil {
		t.Fatalf("%s: no application/tlsrpt part found independently", path)
	}
	return found
}

func gunzipIf(t *testing.T, path string, b []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: gzip: %v", path, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: gunzip: %v", path, err)
	}
	return out
}

// expectation sums what a set of deliveries must add to the store,
// computed by a generic JSON walk: per policy, the successful sessions and
// the failed ones (the larger of the summary's total and the sum of the
// details, the rule the rollups follow), counting a report delivered twice
// (same organization and report id, or same bytes) once.
type expectation struct {
	seen               map[string]bool
	reports            int
	success, failure   int64
	summarySuccessful  int64
	summaryFailed      int64
	unidentifiedCopies int
}

func (x *expectation) add(t *testing.T, path string, delivered, js []byte) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("%s: the report is not JSON: %v", path, err)
	}
	org, _ := doc["organization-name"].(string)
	id, _ := doc["report-id"].(string)
	key := "id:" + org + "\x00" + id
	if org == "" || id == "" {
		sum := sha256.Sum256(delivered)
		key = "digest:" + hex.EncodeToString(sum[:])
		x.unidentifiedCopies++
	}
	if x.seen == nil {
		x.seen = make(map[string]bool)
	}
	if x.seen[key] {
		return
	}
	x.seen[key] = true
	x.reports++
	num := func(m map[string]any, k string) int64 {
		f, _ := m[k].(float64)
		return int64(f)
	}
	pols, _ := doc["policies"].([]any)
	for _, p := range pols {
		pm, _ := p.(map[string]any)
		sum, _ := pm["summary"].(map[string]any)
		succ, fail := num(sum, "total-successful-session-count"), num(sum, "total-failure-session-count")
		var detailed int64
		details, _ := pm["failure-details"].([]any)
		for _, d := range details {
			dm, _ := d.(map[string]any)
			detailed += num(dm, "failed-session-count")
		}
		x.success += succ
		x.failure += max(fail, detailed)
		x.summarySuccessful += succ
		x.summaryFailed += fail
	}
}

// checkStore compares the store's rollups and report totals with x.
func (x *expectation) checkStore(t *testing.T, st testStore) {
	t.Helper()
	ctx := context.Background()
	if n, err := st.CountTLSRPTReports(ctx, store.ReportFilter{}); err != nil || n != int64(x.reports) {
		t.Errorf("stored %d reports (%v), want %d", n, err, x.reports)
	}
	if n, err := st.CountTLSRPTReports(ctx, store.ReportFilter{Status: store.ReportInvalid}); err != nil || n != 0 {
		t.Errorf("%d reports stored as invalid (%v), want none: every corpus report decodes tolerantly", n, err)
	}
	// What `moat reports tlsrpt summary` shows: its totals are the sums of
	// the reports' total-*-session-count, and its rows by result type add
	// up to the details where a report details more failures than its
	// total (Mail.ru).
	sum, err := tlsrptstats.Summarize(ctx, st, tlsrptstats.Query{By: tlsrptstats.ByResult})
	if err != nil {
		t.Fatal(err)
	}
	if sum.TotalSuccessful != x.summarySuccessful || sum.TotalFailed != x.summaryFailed {
		t.Errorf("summary: %d successful and %d failed sessions, want the reports' sums %d and %d",
			sum.TotalSuccessful, sum.TotalFailed, x.summarySuccessful, x.summaryFailed)
	}
	var succ, fail int64
	for _, r := range sum.Rows {
		succ += r.Successful
		fail += r.Failed
	}
	if succ != x.success || fail != x.failure || sum.TotalFailed+sum.DetailExcess != x.failure {
		t.Errorf("summary rows: %d successful and %d failed sessions (excess %d), want %d and %d (details where they exceed totals)",
			succ, fail, sum.DetailExcess, x.success, x.failure)
	}
	reps, err := st.TLSRPTReports(ctx, store.ReportFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var rs, rf int64
	for _, r := range reps {
		rs += r.Successful
		rf += r.Failed
	}
	if rs != x.summarySuccessful || rf != x.summaryFailed {
		t.Errorf("report totals: %d successful and %d failed, want the summaries' %d and %d", rs, rf, x.summarySuccessful, x.summaryFailed)
	}
}

func TestConformanceImport(t *testing.T) {
	t.Parallel()
	files := corpusFiles(t)
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	var paths []string
	var x expectation
	for _, f := range files {
		paths = append(paths, f.path)
		x.add(t, f.path, f.report, f.js)
	}
	stats, err := Import(context.Background(), ing, paths, ImportOpts{})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if len(stats.Errors) > 0 || len(stats.NotReports) > 0 || stats.Invalid > 0 {
		t.Errorf("import of the TLS-RPT corpus: errors %v, not reports %v, %d invalid", stats.Errors, stats.NotReports, stats.Invalid)
	}
	if stats.Reports != x.reports || stats.Reports+stats.Duplicates != len(files) {
		t.Errorf("import stats %+v: want %d new reports and %d duplicates", stats, x.reports, len(files)-x.reports)
	}
	x.checkStore(t, st)
	t.Logf("%d files, %d distinct reports, %d successful and %d failed sessions", len(files), x.reports, x.success, x.failure)

	// DMARC aggregate reports by mail are stored as DMARC reports, and
	// the TLS reports are left as they were.
	dmarc, _ := filepath.Glob(filepath.Join(corpora, "parsedmarc/samples/aggregate/*.eml"))
	if len(dmarc) == 0 {
		t.Logf("no DMARC aggregate mails in the corpora; their sorting not checked here")
		return
	}
	stats, err = Import(context.Background(), ing, dmarc, ImportOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.NotReports) != 0 || stats.Reports != len(dmarc) || stats.Kinds["dmarc"] != len(dmarc) {
		t.Errorf("DMARC mails: %+v, want all %d stored as DMARC reports", stats, len(dmarc))
	}
	if n, err := st.CountDMARCReports(t.Context(), store.DMARCFilter{}); err != nil || n != int64(len(dmarc)) {
		t.Errorf("%d DMARC reports stored (%v), want %d", n, err, len(dmarc))
	}
	x.checkStore(t, st) // unchanged
}

func TestConformanceLive(t *testing.T) {
	t.Parallel()
	files := corpusFiles(t)
	st := openStore(t)
	// HTTP and SMTP share one Ingester and store, as in moat serve.
	e := startSMTP(t, st, nil, SMTPOpts{Resolver: mapResolver{}})
	ing := startIngester(t, st, nil, IngestOpts{})
	hsrv := newTestHTTPServer(t, ing)
	var x expectation
	for _, f := range files {
		if f.mail {
			text, err := e.send(t, true, testRcpt, f.raw)
			if err != nil {
				t.Errorf("%s by SMTP: %v", f.path, err)
				continue
			}
			if !strings.Contains(text, "report stored") && !strings.Contains(text, "already received") {
				t.Errorf("%s by SMTP: %q", f.path, text)
			}
			x.add(t, f.path, f.report, f.js)
			continue
		}
		for _, body := range []struct {
			ctype string
			data  []byte
		}{{"application/tlsrpt+json", f.raw}, {"application/tlsrpt+gzip", gzipped(t, f.raw)}} {
			code, text, _ := post(t, hsrv.Client(), "POST", hsrv.URL+ReportPath, body.ctype, bytes.NewReader(body.data))
			if code != 200 {
				t.Errorf("%s as %s: %d %q", f.path, body.ctype, code, text)
				continue
			}
			x.add(t, f.path, body.data, f.js)
		}
	}
	x.checkStore(t, st)

	// A mail without a report is refused with the reason.
	_, err := e.send(t, true, testRcpt, plainMail("Just saying hello."))
	if code, msg := smtpCode(err); code != 550 || !strings.Contains(msg, "no TLS report") {
		t.Errorf("a plain mail: %d %q, want 550 with the reason", code, msg)
	}
	// A DMARC aggregate report sent to the TLS-RPT address is still a
	// report: stored as DMARC, the TLS reports left as they were.
	dmarc, _ := filepath.Glob(filepath.Join(corpora, "parsedmarc/samples/aggregate/*.eml"))
	sort.Strings(dmarc)
	for _, p := range dmarc {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if text, err := e.send(t, true, testRcpt, raw); err != nil || !strings.Contains(text, "stored") {
			t.Errorf("%s by SMTP: %q %v, want it stored", filepath.Base(p), text, err)
		}
	}
	if n, err := st.CountDMARCReports(t.Context(), store.DMARCFilter{}); err != nil || n != int64(len(dmarc)) {
		t.Errorf("%d DMARC reports stored (%v), want %d", n, err, len(dmarc))
	}
	x.checkStore(t, st) // unchanged
}
