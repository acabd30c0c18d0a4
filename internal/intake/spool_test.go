package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/store"
)

// spoolEnv is an SMTP intake with intake.smtp_spool on a real SQLite
// store; the processor (RunSpool) runs from start until the test ends.
type spoolEnv struct {
	*smtpEnv
	st    store.Store
	ing   *Ingester
	start func() // starts RunSpool
}

// startSpool starts the SMTP intake with spooling over st (a new SQLite
// store when nil); RunSpool starts at once unless later, then by start.
func startSpool(t *testing.T, st store.Store, so SpoolOpts, later bool) *spoolEnv {
	t.Helper()
	if st == nil {
		st = openStore(t)
	}
	ing := startIngester(t, st, nil, IngestOpts{Spool: st, SpoolOpts: so})
	e := &spoolEnv{st: st, ing: ing}
	e.smtpEnv = startSMTPWith(t, ing, st, SMTPOpts{Spool: true, DMARCRecipients: []string{testDMARCRcpt}, Resolver: mapResolver{}})
	var started atomic.Bool
	e.start = func() {
		if started.Swap(true) {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ing.RunSpool(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("RunSpool: %v", err)
			}
		})
	}
	if !later {
		e.start()
	}
	return e
}

// waitReports waits until the store holds n TLS reports and the spool
// nothing queued.
func waitReports(t *testing.T, st store.Store, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := st.CountTLSRPTReports(t.Context(), store.ReportFilter{})
		if err != nil {
			t.Fatal(err)
		}
		ss, err := st.SpoolStats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got == n && ss.Queued == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d TLS reports stored and %d messages queued, want %d and 0", within, got, ss.Queued, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spoolID returns the spool id a 250 text names.
func spoolID(t *testing.T, text string) int64 {
	t.Helper()
	i := strings.Index(text, "(spool ")
	var id int64
	if i < 0 {
		t.Fatalf("reply %q names no spooled message", text)
	}
	if _, err := fmt.Sscanf(text[i:], "(spool %d)", &id); err != nil {
		t.Fatalf("reply %q: %v", text, err)
	}
	return id
}

// TestSMTPSpool: with spooling, a report mail is answered once the message
// is in the spool, and its report is stored afterwards with the time it
// was received; mail without a report is still refused in the dialogue; a
// DMARC report is named as such; a message delivered again stores nothing
// new.
func TestSMTPSpool(t *testing.T) {
	t.Parallel()
	e := startSpool(t, nil, SpoolOpts{Quiet: 10 * time.Millisecond, Poll: 50 * time.Millisecond}, true)
	ctx := t.Context()
	msg := reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", "spool-1", "a.example", 20, 1)))
	before := time.Now()
	text, err := e.send(t, false, testRcpt, msg)
	if err != nil {
		t.Fatalf("delivery: %v", err)
	}
	if !strings.Contains(text, "TLS report accepted, queued for storage (spool ") {
		t.Errorf("answer %q, want the TLS report queued", text)
	}
	id := spoolID(t, text)
	ss, err := e.st.SpoolStats(ctx)
	if err != nil || ss.Queued != 1 {
		t.Fatalf("spool after the answer: %+v, %v; want the message queued", ss, err)
	}
	if n, _ := e.st.CountTLSRPTReports(ctx, store.ReportFilter{}); n != 0 {
		t.Fatalf("%d reports stored before the processor ran", n)
	}
	acked := time.Now()

	// Not a report: refused, nothing spooled.
	if _, err := e.send(t, false, testRcpt, plainMail("Just saying hello.")); err == nil {
		t.Error("a mail without a report was accepted")
	} else if code, _ := smtpCode(err); code != 550 {
		t.Errorf("a mail without a report: %v, want 550", err)
	}

	time.Sleep(50 * time.Millisecond) // the report's time must be the answer's, not the processing's
	e.start()
	waitReports(t, e.st, 1, 10*time.Second)
	reps, err := e.st.TLSRPTReports(ctx, store.ReportFilter{})
	if err != nil || len(reps) != 1 {
		t.Fatalf("reports: %d, %v", len(reps), err)
	}
	r := reps[0]
	// The Message-ID is added to the detail by the processor, once.
	if r.ReportID != "spool-1" || r.Source != SourceSMTP || !strings.Contains(r.SourceDetail, "from=<tlsrpt@sender.example>") ||
		strings.Count(r.SourceDetail, " message-id=m1@sender.example") != 1 ||
		r.ReceivedAt.Before(before.Add(-time.Millisecond)) || r.ReceivedAt.After(acked) {
		t.Errorf("stored report %q from %q (%q) received %v, want spool-1 by smtp received between %v and %v",
			r.ReportID, r.Source, r.SourceDetail, r.ReceivedAt, before, acked)
	}
	if got := e.ing.SpoolDone(); got != 1 {
		t.Errorf("SpoolDone = %d, want 1", got)
	}

	// The same mail again: accepted, stored nothing new.
	text, err = e.send(t, false, testRcpt, msg)
	if err != nil || spoolID(t, text) <= id {
		t.Fatalf("second delivery: %q, %v", text, err)
	}
	waitReports(t, e.st, 1, 10*time.Second)

	// A DMARC report.
	text, err = e.send(t, false, testDMARCRcpt, benchDMARCMail(t, "spool-dmarc", 3))
	if err != nil || !strings.Contains(text, "DMARC report accepted, queued for storage (spool ") {
		t.Fatalf("DMARC delivery: %q, %v", text, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		reps, err := e.st.DMARCReports(ctx, store.DMARCFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) == 1 && reps[0].ReportID == "spool-dmarc" && reps[0].Records == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DMARC reports after 10 s: %d", len(reps))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpoolWaitsForQuiet: while mail keeps arriving the processor waits
// (unless the oldest message has waited MaxDelay), then stores every
// report.
func TestSpoolWaitsForQuiet(t *testing.T) {
	t.Parallel()
	e := startSpool(t, nil, SpoolOpts{Quiet: 3 * time.Second, MaxDelay: time.Hour, Poll: 50 * time.Millisecond}, false)
	const n = 10
	for i := range n {
		msg := reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", fmt.Sprint("quiet-", i), "a.example", 1, 0)))
		if _, err := e.send(t, false, testRcpt, msg); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.st.CountTLSRPTReports(t.Context(), store.ReportFilter{}); got != 0 {
			t.Fatalf("a report was stored while mail arrived (after message %d)", i+1)
		}
	}
	waitReports(t, e.st, n, 20*time.Second)
}

// TestSpoolMaxDelay: a message waits no longer than MaxDelay, even while
// mail keeps arriving.
func TestSpoolMaxDelay(t *testing.T) {
	t.Parallel()
	e := startSpool(t, nil, SpoolOpts{Quiet: time.Hour, MaxDelay: 300 * time.Millisecond, Poll: 50 * time.Millisecond}, false)
	msg := reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", "late-1", "a.example", 1, 0)))
	if _, err := e.send(t, false, testRcpt, msg); err != nil {
		t.Fatal(err)
	}
	waitReports(t, e.st, 1, 20*time.Second)
}

// TestSpoolRestart: messages spooled by a process that stopped before
// storing them, and messages claimed by a processor that died, are stored
// by the next one; a message that holds no report is kept, marked failed,
// and not retried.
func TestSpoolRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStoreAt(t, dir)
	ctx := t.Context()
	var items []*store.SpoolItem
	for i := range 5 {
		items = append(items, &store.SpoolItem{ReceivedAt: time.Now(), Source: SourceSMTP, Detail: fmt.Sprint("m", i), DKIM: "none",
			Hint: store.KindTLSRPT, Data: reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", fmt.Sprint("restart-", i), "a.example", 1, 0)))})
	}
	junk := &store.SpoolItem{ReceivedAt: time.Now(), Source: SourceSMTP, Detail: "junk", DKIM: "none", Data: plainMail("no report here")}
	if err := st.SpoolPut(ctx, append(items, junk)); err != nil {
		t.Fatal(err)
	}
	// A processor that claimed two and died.
	if got, err := st.SpoolClaim(ctx, 2, 300*time.Millisecond); err != nil || len(got) != 2 {
		t.Fatalf("claim: %d, %v", len(got), err)
	}
	e := startSpool(t, st, SpoolOpts{Quiet: 10 * time.Millisecond, Poll: 50 * time.Millisecond}, false)
	waitReports(t, st, 5, 20*time.Second)
	failed, err := st.SpoolFailed(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].ID != junk.ID || !strings.Contains(failed[0].Error, "no ") {
		t.Fatalf("failed messages %+v, want the one without a report, with the reason", failed)
	}
	if e.ing.SpoolFailed() != 1 || e.ing.SpoolDone() != 5 {
		t.Errorf("SpoolDone %d, SpoolFailed %d; want 5 and 1", e.ing.SpoolDone(), e.ing.SpoolFailed())
	}
}

// flakyStore fails what its switches say.
type flakyStore struct {
	store.Store
	failPut    atomic.Bool
	failInsert atomic.Int64 // InsertTLSRPT calls left to fail
}

func (f *flakyStore) SpoolPut(ctx context.Context, items []*store.SpoolItem) error {
	if f.failPut.Load() {
		return errors.New("disk full")
	}
	return f.Store.SpoolPut(ctx, items)
}

func (f *flakyStore) InsertTLSRPT(ctx context.Context, reps []*store.TLSRPTReport) ([]store.InsertResult, error) {
	if f.failInsert.Add(-1) >= 0 {
		return nil, errors.New("database is locked")
	}
	return f.Store.InsertTLSRPT(ctx, reps)
}

// TestSpoolStoreFailures: a message the spool cannot keep is answered
// 451 and nothing is kept; a report the store cannot take when processed
// stays spooled and is stored on a later attempt.
func TestSpoolStoreFailures(t *testing.T) {
	t.Parallel()
	f := &flakyStore{Store: openStore(t)}
	e := startSpool(t, f, SpoolOpts{Quiet: 10 * time.Millisecond, Poll: 50 * time.Millisecond}, false)
	msg := func(id string) []byte {
		return reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", id, "a.example", 1, 0)))
	}
	f.failPut.Store(true)
	_, err := e.send(t, false, testRcpt, msg("down-1"))
	if code, _ := smtpCode(err); code != 451 {
		t.Fatalf("delivery while the spool fails: %v, want 451", err)
	}
	if ss, err := f.SpoolStats(t.Context()); err != nil || ss.Queued != 0 {
		t.Fatalf("spool after a failed put: %+v, %v", ss, err)
	}
	f.failPut.Store(false)
	f.failInsert.Store(1)
	if _, err := e.send(t, false, testRcpt, msg("down-2")); err != nil {
		t.Fatal(err)
	}
	waitReports(t, f, 1, 20*time.Second) // the first attempt fails, the retry 2 s later stores it
	reps, err := f.TLSRPTReports(t.Context(), store.ReportFilter{})
	if err != nil || len(reps) != 1 || reps[0].ReportID != "down-2" {
		t.Fatalf("reports %v, %v; want down-2 alone", reps, err)
	}
	if f.failInsert.Load() >= 0 {
		t.Error("the failing insert was never tried")
	}
}

// FuzzCheckMail: SpoolMail's cheap check takes every message SubmitMail
// would store, whatever it is addressed to; a message it takes that
// SubmitMail refuses may only be one too large once decompressed (kept,
// marked failed, when processed). Refusals name their reason.
func FuzzCheckMail(f *testing.F) {
	agg := dmarcXML("Receiver", "c-1", "a.example", 2, 3)
	f.Add(reportMail("application/tlsrpt+gzip", gzipped(f, []byte(rfcExample))), true)
	f.Add(reportMail("application/tlsrpt+json", []byte(rfcExample)), false)
	f.Add(reportMail("application/tlsrpt+gzip", []byte("not gzip at all")), true)
	f.Add(reportMail("application/gzip", gzipped(f, agg)), true)
	f.Add(dmarcMail("application/gzip", "r.xml.gz", gzipped(f, agg)), false)
	f.Add(dmarcMail("application/gzip", "r.json.gz", gzipped(f, []byte(rfcExample))), false)
	f.Add(dmarcMail("application/zip", "r.zip", zipped(f, "r.xml", agg)), true)
	f.Add(dmarcMail("text/html", "r.html", []byte("<html>hi</html>")), false)
	f.Add(failureMail(1), false)
	f.Add(failureMail(2), true)
	f.Add(plainMail("Just saying hello."), true)
	f.Add(plainMail(rfcExample), true)
	f.Add([]byte("Subject: x\r\nContent-Type: application/octet-stream\r\n\r\n\x1f\x8b\x08\x00"), false)
	f.Add([]byte{}, false)
	ing := NewIngester(nil, &nullStore{}, nil, IngestOpts{MaxDecompressed: 1 << 20, MaxDMARCXML: 1 << 20})
	f.Fuzz(func(t *testing.T, raw []byte, tlsAddress bool) {
		opts := MailOpts{Hint: store.KindDMARC}
		if tlsAddress {
			opts.Hint = store.KindTLSRPT
		}
		sub := Submission{Source: SourceSMTP, SourceDetail: "fuzz"}
		_, perr := ing.planMail(sub, raw, opts)
		rc, cerr := ing.checkMail(sub, raw, opts)
		switch {
		case perr == nil && cerr != nil:
			t.Fatalf("SubmitMail stores the message, the spool's check refuses it: %v", cerr)
		case perr != nil && cerr == nil && !errors.Is(perr, ErrTooLarge):
			t.Fatalf("the spool's check takes a message SubmitMail refuses (%v)", perr)
		case cerr != nil && (!errors.Is(cerr, ErrNotReport) && !errors.Is(cerr, ErrTooLarge) || !strings.Contains(cerr.Error(), ": ")):
			t.Fatalf("refusal without its reason: %v", cerr)
		case cerr == nil && (rc.Kind == "" || rc.Reports < 1):
			t.Fatalf("receipt %+v names no report", rc)
		}
	})
}

// TestSpoolFull: beyond MaxQueued waiting messages, mail is deferred with
// 452 4.3.1 and nothing is spooled; once the processor has stored the
// waiting ones, mail is taken again.
func TestSpoolFull(t *testing.T) {
	t.Parallel()
	e := startSpool(t, nil, SpoolOpts{MaxQueued: 2, Quiet: 10 * time.Millisecond, Poll: 50 * time.Millisecond}, true)
	msg := func(i int) []byte {
		return reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", fmt.Sprint("full-", i), "a.example", 1, 0)))
	}
	for i := range 2 {
		if _, err := e.send(t, false, testRcpt, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.send(t, false, testRcpt, msg(2))
	if code, text := smtpCode(err); code != 452 || !strings.Contains(text, "retry later") {
		t.Fatalf("a third message with two waiting: %v, want 452", err)
	}
	if ss, err := e.st.SpoolStats(t.Context()); err != nil || ss.Queued != 2 {
		t.Fatalf("spool: %+v, %v; want the two", ss, err)
	}
	e.start()
	waitReports(t, e.st, 2, 10*time.Second)
	if _, err := e.send(t, false, testRcpt, msg(2)); err != nil {
		t.Fatalf("after the spool emptied: %v", err)
	}
	waitReports(t, e.st, 3, 10*time.Second)
}

// TestQuickCheck: reports larger than what the quick check decodes of a
// part (checkHead) are still recognized from their first bytes, so
// SpoolMail does not fall back to SubmitMail's whole search for them; and
// gunzipHead of a gzip stream cut short gives the first bytes of the
// whole.
func TestQuickCheck(t *testing.T) {
	t.Parallel()
	ing := NewIngester(nil, &nullStore{}, nil, IngestOpts{MaxDecompressed: 1 << 20, MaxDMARCXML: 1 << 20})
	bigJSON := bigTLSReport()
	bigTLS := gzipped(t, bigJSON)
	bigDMARC := gzipped(t, dmarcXML("Receiver", "big-2", "a.example", 600, 3))
	if len(bigTLS) < 2*checkHead || len(bigDMARC) < 2*checkHead {
		t.Fatalf("test reports of %d and %d bytes gzipped: not larger than the check's %d", len(bigTLS), len(bigDMARC), checkHead)
	}
	for _, c := range []struct {
		name, hint, want string
		raw              []byte
	}{
		{"TLS report to the TLS address", store.KindTLSRPT, store.KindTLSRPT, reportMail("application/tlsrpt+gzip", bigTLS)},
		{"TLS report to the DMARC address", store.KindDMARC, store.KindTLSRPT, reportMail("application/tlsrpt+gzip", bigTLS)},
		{"DMARC report to the DMARC address", store.KindDMARC, store.KindDMARC, dmarcMail("application/gzip", "r.xml.gz", bigDMARC)},
		{"DMARC report to the TLS address", store.KindTLSRPT, store.KindDMARC, dmarcMail("application/gzip", "r.xml.gz", bigDMARC)},
		{"prose", store.KindTLSRPT, "", plainMail("Just saying hello.")},
	} {
		if got := ing.quickCheck(c.raw, c.hint); got != c.want {
			t.Errorf("%s: quickCheck = %q, want %q", c.name, got, c.want)
		}
	}

	whole, ok := ing.gunzipHead(bigTLS)
	if !ok || len(whole) != 512 {
		t.Fatalf("gunzipHead of the whole stream: %d bytes, %v", len(whole), ok)
	}
	part, ok := ing.gunzipHead(bigTLS[:300])
	if !ok || len(part) == 0 || !bytes.HasPrefix(whole, part) {
		t.Fatalf("gunzipHead of the first 300 bytes: %q, %v; want a prefix of %q", part, ok, whole)
	}
}

// bigTLSReport is a TLS report of about 20 KB of JSON, failure details with
// distinct addresses, that compresses to well over checkHead bytes.
func bigTLSReport() []byte {
	var details []string
	for i := range 200 {
		details = append(details, fmt.Sprintf(`{"result-type":"validation-failure","sending-mta-ip":"192.0.2.%d","receiving-mx-hostname":"mx%d.a.example","failed-session-count":%d,"additional-information":"%016x"}`, i, i*7919%1000, i*31%97+1, uint64(i)*0x9E3779B97F4A7C15))
	}
	return []byte(`{"organization-name":"Sender","date-range":{"start-datetime":"2026-12-01T00:00:00Z","end-datetime":"2026-12-01T23:59:59Z"},` +
		`"contact-info":"tlsrpt@sender.example","report-id":"big-1","policies":[{"policy":{"policy-type":"sts","policy-domain":"a.example"},` +
		`"summary":{"total-successful-session-count":1,"total-failure-session-count":200},"failure-details":[` + strings.Join(details, ",") + `]}]}`)
}

// BenchmarkQuickCheck is the spool's check of a mail holding a TLS report
// of 20 KB of JSON (about 6.5 KB gzipped, in base64).
func BenchmarkQuickCheck(b *testing.B) {
	ing := NewIngester(nil, &nullStore{}, nil, IngestOpts{MaxDecompressed: 1 << 20, MaxDMARCXML: 1 << 20})
	raw := reportMail("application/tlsrpt+gzip", gzipped(b, bigTLSReport()))
	b.ReportAllocs()
	for b.Loop() {
		if ing.quickCheck(raw, store.KindTLSRPT) == "" {
			b.Fatal("the quick check did not decide")
		}
	}
}

// largeTLSReport is a conforming TLS report with report id n: 200
// failure details from 200 sending IPs to 20 MX hosts, about 25 KB of JSON.
func largeTLSReport(n int) []byte {
	var details []string
	total := 0
	for i := range 200 {
		total += i%7 + 1
		details = append(details, fmt.Sprintf(`{"result-type":"validation-failure","sending-mta-ip":"192.0.2.%d","receiving-mx-hostname":"mx%d.a.example","failed-session-count":%d,"additional-information":"https://sender.example/tls/%d"}`, i, i%20, i%7+1, i))
	}
	return fmt.Appendf(nil, `{"organization-name":"Sender","date-range":{"start-datetime":"2026-12-01T00:00:00Z","end-datetime":"2026-12-01T23:59:59Z"},`+
		`"contact-info":"tlsrpt@sender.example","report-id":"large-%d","policies":[{"policy":{"policy-type":"sts","policy-domain":"a.example",`+
		`"policy-string":["version: STSv1","mode: enforce","mx: *.a.example","max_age: 604800"],"mx-host":["*.a.example"]},`+
		`"summary":{"total-successful-session-count":1000,"total-failure-session-count":%d},"failure-details":[%s]}]}`, n, total, strings.Join(details, ","))
}

// BenchmarkStoreLargeTLS is what the spool's processor spends on a mail
// holding a TLS report of 200 failure details (20 KB of JSON): SubmitMail
// into a real SQLite store from 16 submitters, as RunSpool's workers
// submit, the writer committing them together.
func BenchmarkStoreLargeTLS(b *testing.B) {
	st := openStore(b)
	ing := startIngester(b, st, func(string) bool { return true }, IngestOpts{MaxDecompressed: 1 << 20})
	mails := make([][]byte, b.N)
	for i := range mails {
		mails[i] = reportMail("application/tlsrpt+gzip", gzipped(b, largeTLSReport(i)))
	}
	var next atomic.Int64
	b.SetParallelism(8) // 16 submitters on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := int(next.Add(1)) - 1
			raw := mails[n]
			res, err := ing.SubmitMail(b.Context(), Submission{Source: SourceSMTP}, raw, MailOpts{Hint: store.KindTLSRPT})
			if err != nil || res[0].Duplicate || res[0].Status != store.ReportOK {
				b.Fatalf("report %d: %v, %v (%.300v)", n, err, res[0].Status, res[0].Warnings)
			}
		}
	})
	b.ReportMetric(float64(next.Load())/b.Elapsed().Seconds(), "reports/s")
}
