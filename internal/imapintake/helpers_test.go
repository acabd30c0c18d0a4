package imapintake

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/corpora"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
)

// testMail is a message of a test mailbox and the reports it holds.
type testMail struct {
	name    string
	raw     []byte
	reports int  // distinct reports in it; 0: not a report mail
	dmarc   bool // its report is a DMARC (aggregate or failure) report
}

// storeEnv is a real SQLite store with a running ingester and the
// TLS-RPT mail sink.
type storeEnv struct {
	st   store.Store
	ing  *intake.Ingester
	sink *intake.MailSink
}

func newStoreEnv(t *testing.T) *storeEnv {
	t.Helper()
	st, err := store.Open(context.Background(), slog.New(slog.DiscardHandler), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ing := intake.NewIngester(testLogger(t), st, nil, intake.IngestOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingester: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return &storeEnv{st: st, ing: ing, sink: intake.NewMailSink(ing, intake.SourceIMAP)}
}

// testLogger logs warnings and errors to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// testOpts are short timeouts and small batches, so that a test sees
// several batches and never waits long.
func testOpts(d *dovecot) Opts {
	return Opts{
		CAFile: d.caFile, DialTimeout: 10 * time.Second, CommandTimeout: 20 * time.Second,
		FetchTimeout: 30 * time.Second, StoreTimeout: 30 * time.Second, BatchMessages: 4,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}
}

// reportJSON is a small RFC 8460 report.
func reportJSON(org, id string, successful, failed int) []byte {
	return fmt.Appendf(nil, `{"organization-name":%q,"date-range":{"start-datetime":"2026-03-01T00:00:00Z","end-datetime":"2026-03-01T23:59:59Z"},"contact-info":"tlsrpt@%s","report-id":%q,"policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.customer.example","max_age: 86400"],"policy-domain":"customer.example"},"summary":{"total-successful-session-count":%d,"total-failure-session-count":%d},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.customer.example","failed-session-count":%d}]}]}`,
		org, strings.ToLower(strings.ReplaceAll(org, " ", ""))+".example", id, successful, failed, failed)
}

// reportMail wraps report bytes in an RFC 8460 §5.3 message.
func reportMail(id string, report []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: reporter@sender.example\nTo: tlsrpt@reports.example.net\nSubject: Report Domain: customer.example Submitter: sender.example Report-ID: <%s>\n", id)
	fmt.Fprintf(&b, "Date: Mon, 02 Mar 2026 10:00:00 +0000\nMessage-ID: <%s@sender.example>\nMIME-Version: 1.0\n", id)
	b.WriteString("Content-Type: multipart/report; report-type=tlsrpt; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nA TLS report.\n\n--XX\n")
	b.WriteString("Content-Type: application/tlsrpt+json\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"report.json\"\n\n")
	enc := base64.StdEncoding.EncodeToString(report)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n--XX--\n")
	return b.Bytes()
}

// fixtureMails are the testdata messages and n generated report mails.
func fixtureMails(t *testing.T, n int) []testMail {
	t.Helper()
	var mails []testMail
	for _, f := range []struct {
		name    string
		reports int
	}{{"two-reports-in-one-mail.eml", 2}, {"damaged-report.eml", 1}, {"plain-text-mail.eml", 0}} {
		raw, err := os.ReadFile(filepath.Join("testdata", f.name))
		if err != nil {
			t.Fatal(err)
		}
		mails = append(mails, testMail{name: f.name, raw: raw, reports: f.reports})
	}
	for i := range n {
		id := fmt.Sprintf("gen-%03d", i)
		mails = append(mails, testMail{name: id, raw: reportMail(id, reportJSON(fmt.Sprintf("Sender %d", i%3), id, 100+i, i%4)), reports: 1})
	}
	return mails
}

// corporaDir is where the real-world samples are: MOAT_CORPORA, else
// ../shared/corpora beside the repository.
func corporaDir() string {
	if d := os.Getenv("MOAT_CORPORA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "corpora")
}

// corpusMails are the real report mails of the corpora (each holds one
// TLS report), their TLS report files wrapped in mails, and their DMARC
// aggregate and failure report mails (one DMARC report each, but for those
// corpora.DMARC says are refused). It skips the test, saying why, when the
// corpora are absent.
func corpusMails(t *testing.T) []testMail {
	t.Helper()
	root := corporaDir()
	if _, err := os.Stat(root); err != nil {
		t.Skipf("SKIP: real-world corpora not found at %s (set MOAT_CORPORA): %v", root, err)
	}
	tlsDirs := []string{
		"parsedmarc/samples/smtp_tls", "mox/testdata/tlsreports", "stalwart-mail-auth/resources/tlsrpt",
		"cry-inc-dmarc-report-viewer/testdata/smtp-tls-reports",
	}
	otherDirs := []string{
		"mox/testdata/dmarc-reports", "parsedmarc/samples/aggregate", "parsedmarc/samples/failure",
		"stalwart-mail-auth/resources/arf", "stalwart-mail-auth/resources/dmarc-feedback",
	}
	dmarcOK := map[string]bool{}
	for _, f := range corpora.DMARC() {
		dmarcOK[f.Path] = f.Parses()
	}
	var mails []testMail
	read := func(dir string, reportDir bool) {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatalf("corpus folder %s: %v", dir, err)
		}
		for _, e := range ents {
			p := filepath.Join(root, dir, e.Name())
			ext := filepath.Ext(e.Name())
			if ext != ".eml" && (!reportDir || ext != ".json") {
				continue
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case ext == ".json":
				mails = append(mails, testMail{name: p, raw: reportMail(e.Name(), raw), reports: 1})
			case reportDir:
				mails = append(mails, testMail{name: p, raw: raw, reports: 1})
			case dmarcOK[dir+"/"+e.Name()]:
				mails = append(mails, testMail{name: p, raw: raw, reports: 1, dmarc: true})
			default:
				mails = append(mails, testMail{name: p, raw: raw})
			}
		}
	}
	for _, d := range tlsDirs {
		read(d, true)
	}
	for _, d := range otherDirs {
		read(d, false)
	}
	tls := 0
	for _, m := range mails {
		if m.reports > 0 && !m.dmarc {
			tls++
		}
	}
	if n := tls; n < 15 {
		t.Fatalf("only %d TLS report mails in the corpora: did the layout change?", n)
	}
	return mails
}

func countReports(mails []testMail) (n int) {
	for _, m := range mails {
		if m.reports > 0 {
			n++
		}
	}
	return n
}

func raws(mails []testMail) [][]byte {
	out := make([][]byte, len(mails))
	for i, m := range mails {
		out[i] = m.raw
	}
	return out
}

// expected is what the store must hold once every mail is imported: the
// distinct valid reports (organization and report id), the invalid ones,
// and the sessions of their rollups. It reads the mails with tlsrpt,
// independently of the intake.
type expected struct {
	keys     []string // sorted
	invalid  int
	sessions int64
	dmarc    int // DMARC reports (aggregate and failure)
}

func expect(t *testing.T, mails []testMail) expected {
	t.Helper()
	var e expected
	seen := map[string]bool{}
	dmarcSeen := map[string]bool{}
	for _, m := range mails {
		// The server stores CRLF: copies of a mail that differ only in
		// line ends (the corpora have such) are one message.
		if m.dmarc && !dmarcSeen[string(crlf(m.raw))] {
			dmarcSeen[string(crlf(m.raw))] = true
			e.dmarc += m.reports
		}
		if m.reports == 0 || m.dmarc {
			continue
		}
		msg, err := tlsrpt.ExtractMessage(bytes.NewReader(crlf(m.raw)), 0)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		valid := 0
		for _, p := range msg.Parts {
			js, _, err := tlsrpt.Decompress(p.Data, 64<<20)
			if err != nil {
				continue
			}
			r, _, err := tlsrpt.Decode(js)
			if err != nil {
				continue
			}
			key := r.OrganizationName + "\x00" + r.ReportID
			if seen[key] {
				valid++ // in this mail or an earlier one: stored once
				continue
			}
			seen[key] = true
			valid++
			e.keys = append(e.keys, key)
			rows, _ := intake.Rollups(r, time.Now())
			for _, row := range rows {
				e.sessions += row.Sessions
			}
		}
		if valid == 0 {
			e.invalid++
		}
	}
	slices.Sort(e.keys)
	return e
}

// stored is what the store holds, in the same terms.
func stored(t *testing.T, st store.Store) expected {
	t.Helper()
	ctx := context.Background()
	reps, err := st.TLSRPTReports(ctx, store.ReportFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	var got expected
	for _, r := range reps {
		if r.Status == store.ReportInvalid {
			got.invalid++
			continue
		}
		got.keys = append(got.keys, r.OrganizationName+"\x00"+r.ReportID)
	}
	slices.Sort(got.keys)
	rows, err := st.TLSRPTRollups(ctx, store.RollupQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		got.sessions += row.Sessions
	}
	n, err := st.CountDMARCReports(ctx, store.DMARCFilter{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := st.DMARCFailures(ctx, store.DMARCFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got.dmarc = int(n) + len(fs)
	return got
}

// checkStored compares the store with what the mails hold: every report
// once (no loss, no duplicate), its sessions counted once.
func checkStored(t *testing.T, st store.Store, want expected) {
	t.Helper()
	got := stored(t, st)
	if !slices.Equal(got.keys, want.keys) {
		t.Errorf("stored reports (%d):\n%s\nwant (%d):\n%s", len(got.keys), keyList(got.keys), len(want.keys), keyList(want.keys))
	}
	if got.invalid != want.invalid {
		t.Errorf("stored %d invalid reports, want %d", got.invalid, want.invalid)
	}
	if got.dmarc != want.dmarc {
		t.Errorf("stored %d DMARC reports, want %d", got.dmarc, want.dmarc)
	}
	if got.sessions != want.sessions {
		t.Errorf("rollups count %d sessions, want %d (a report counted twice or missing)", got.sessions, want.sessions)
	}
}

func keyList(keys []string) string {
	return strings.ReplaceAll(strings.Join(keys, "\n"), "\x00", " / ")
}
