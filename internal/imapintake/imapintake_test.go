package imapintake

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
)

// importOnce runs ImportOnce on d's INBOX with the test options.
func importOnce(t *testing.T, d *dovecot, sink Sink, q string, mod func(*Opts)) (Stats, error) {
	t.Helper()
	opts := testOpts(d)
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return ImportOnce(ctx, testLogger(t), d.url(t, "INBOX", q), d.password, sink, opts)
}

// checkFolders checks where the messages are: inbox, processed, failed,
// and that none is flagged \Seen or \Deleted.
func checkFolders(t *testing.T, d *dovecot, inbox, processed, failed int) {
	t.Helper()
	for _, f := range []struct {
		name string
		want int
	}{{"INBOX", inbox}, {"Moat/Processed", processed}, {"Moat/Failed", failed}} {
		got := d.state(t, f.name)
		if got.messages != f.want {
			t.Errorf("%s holds %d messages, want %d", f.name, got.messages, f.want)
		}
		if got.seen != 0 || got.deleted != 0 {
			t.Errorf("%s: %d messages flagged \\Seen and %d \\Deleted, want none (BODY.PEEK[], MOVE)", f.name, got.seen, got.deleted)
		}
	}
}

func TestImportOnce(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	env := newStoreEnv(t)
	mails := fixtureMails(t, 9)
	want := expect(t, mails)
	d.appendMsgs(t, "INBOX", raws(mails)...)

	st, err := importOnce(t, d, env.sink, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 12 || st.Reports != 12 || st.Invalid != 1 || st.Duplicates != 0 || st.Processed != 11 || st.Failed != 1 ||
		len(st.NotReports) != 1 || len(st.Errors) != 0 {
		t.Errorf("stats %+v, want 12 messages, 12 reports (1 invalid), 11 processed, 1 failed (not a report)", st)
	}
	checkFolders(t, d, 0, 11, 1)
	checkStored(t, env.st, want)

	// The same messages delivered again (a sender retrying, a copy put
	// back): every report is a duplicate, nothing is stored twice.
	d.appendMsgs(t, "INBOX", raws(mails)...)
	st, err = importOnce(t, d, env.sink, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reports != 0 || st.Duplicates != 12 || st.Processed != 11 || st.Failed != 1 {
		t.Errorf("second import: stats %+v, want 0 reports, 12 duplicates", st)
	}
	checkFolders(t, d, 0, 22, 2)
	checkStored(t, env.st, want)

	// An empty folder: nothing to do.
	st, err = importOnce(t, d, env.sink, "", nil)
	if err != nil || st.Messages != 0 {
		t.Errorf("empty folder: %+v, %v", st, err)
	}
}

// TestImportOnceCorpora imports every real report mail of the corpora,
// TLS and DMARC, and their TLS report files wrapped in mails; the mails
// that hold no report (an abuse report, a bounce) go to the failed folder.
func TestImportOnceCorpora(t *testing.T) {
	t.Parallel()
	mails := corpusMails(t)
	d := startDovecot(t, dovecotOpts{})
	env := newStoreEnv(t)
	want := expect(t, mails)
	d.appendMsgs(t, "INBOX", raws(mails)...)
	st, err := importOnce(t, d, env.sink, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	reportMails := countReports(mails)
	if st.Messages != len(mails) || st.Processed != reportMails || st.Failed != len(mails)-reportMails ||
		st.Reports != len(want.keys)+want.invalid+want.dmarc || len(st.Errors) != 0 {
		t.Errorf("stats %+v, want %d messages, %d processed, %d failed, %d reports", st, len(mails), reportMails,
			len(mails)-reportMails, len(want.keys)+want.invalid+want.dmarc)
	}
	for _, p := range st.NotReports {
		t.Logf("not a report: uid %d: %s", p.UID, p.Reason)
	}
	checkFolders(t, d, 0, reportMails, len(mails)-reportMails)
	checkStored(t, env.st, want)
}

// TestImportOnceTLS reads over imaps:// and STARTTLS, verifying the
// server's certificate against the CA file, and refuses a certificate it
// cannot verify.
func TestImportOnceTLS(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{TLS: true})
	env := newStoreEnv(t)
	mails := fixtureMails(t, 2)
	imaps := func() string { return fmt.Sprintf("imaps://%s@%s/INBOX", d.user, d.tlsAddr) }
	starttls := func() string { return fmt.Sprintf("imap://%s@%s/INBOX?starttls=1", d.user, d.addr) }
	for _, u := range []string{imaps(), starttls()} {
		mb, err := ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		d.appendMsgs(t, "INBOX", raws(mails)...)
		st, err := ImportOnce(t.Context(), testLogger(t), mb, d.password, env.sink, testOpts(d))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if st.Messages != len(mails) || st.Processed != 4 {
			t.Errorf("%s: stats %+v", u, st)
		}
		// Without the CA file the certificate is not trusted: no login.
		d.appendMsgs(t, "INBOX", mails[0].raw)
		opts := testOpts(d)
		opts.CAFile = ""
		_, err = ImportOnce(t.Context(), testLogger(t), mb, d.password, env.sink, opts)
		if !errors.Is(err, ErrConnect) {
			t.Errorf("%s without the CA: err %v, want ErrConnect", u, err)
		}
		if _, err := ImportOnce(t.Context(), testLogger(t), mb, d.password, env.sink, testOpts(d)); err != nil {
			t.Fatal(err)
		}
	}
	checkFolders(t, d, 0, 10, 2)
	mb, _ := ParseURL(fmt.Sprintf("imaps://%s@%s/INBOX", d.user, d.tlsAddr))
	if _, err := ImportOnce(t.Context(), testLogger(t), mb, "wrong password", env.sink, testOpts(d)); !errors.Is(err, ErrLogin) {
		t.Errorf("wrong password: err %v, want ErrLogin", err)
	}
}

// TestCutMidFetch cuts the connection at points of the work (inside a
// FETCH literal, before a MOVE reaches the server, after the server moved
// but before its answer arrives) and runs the import again after each cut:
// in the end every report is stored exactly once and every message is in
// its folder exactly once.
func TestCutMidFetch(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	p := startProxy(t, d.addr)
	env := newStoreEnv(t)
	mails := fixtureMails(t, 17) // 20 messages: 5 batches of 4
	want := expect(t, mails)
	d.appendMsgs(t, "INBOX", raws(mails)...)
	total := len(mails)

	cuts := []cutRule{
		{down: true, marker: []byte("BODY[] {"), nth: 1, after: 100},      // in the first message's body
		{down: true, marker: []byte("BODY[] {"), nth: 3, after: 10},       // in the third message of the first batch
		{down: false, marker: []byte("UID MOVE"), nth: 1},                 // a batch stored, its move never sent
		{down: true, marker: []byte("[COPYUID"), nth: 1, after: 0},        // moved, the answer lost
		{down: true, marker: []byte("BODY[] {"), nth: 6, after: 3000},     // in a later batch
		{down: false, marker: []byte("UID MOVE"), nth: 2},                 // after one batch moved
		{down: true, marker: []byte(" FETCH (UID"), nth: 2, after: 1},     // in the sizes' answer
		{down: false, marker: []byte("BODY.PEEK[]"), nth: 1},              // the fetch never sent
		{down: true, marker: []byte("OK [READ-WRITE]"), nth: 1, after: 0}, // right after SELECT
	}
	mb, err := ParseURL(fmt.Sprintf("imap://%s@%s/INBOX", d.user, p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	var sum Stats
	for i, rule := range cuts {
		p.arm(rule)
		st, err := ImportOnce(t.Context(), testLogger(t), mb, d.password, env.sink, testOpts(d))
		sum.Reports += st.Reports
		sum.Duplicates += st.Duplicates
		cuts, armed := p.done()
		if armed {
			t.Logf("cut %d (%s) did not happen: the work was done before it", i, rule.marker)
			p.arm(cutRule{marker: []byte("never")})
		} else if err == nil || !errors.Is(err, ErrConnection) && !errors.Is(err, ErrConnect) {
			t.Errorf("cut %d (%s): err %v, want a connection error", i, rule.marker, err)
		}
		t.Logf("after cut %d (%d cuts): %+v, %v", i, cuts, st, err)
		// No message lost or doubled between the folders, none \Seen.
		in, pr, fa := d.state(t, "INBOX"), d.state(t, "Moat/Processed"), d.state(t, "Moat/Failed")
		if in.messages+pr.messages+fa.messages != total || in.seen+pr.seen+fa.seen != 0 {
			t.Fatalf("after cut %d: inbox %+v, processed %+v, failed %+v: want %d messages in all, none \\Seen", i, in, pr, fa, total)
		}
	}
	st, err := ImportOnce(t.Context(), testLogger(t), mb, d.password, env.sink, testOpts(d))
	if err != nil {
		t.Fatalf("final import: %v", err)
	}
	sum.Reports += st.Reports
	checkFolders(t, d, 0, countReports(mails), total-countReports(mails))
	checkStored(t, env.st, want)
	if sum.Reports != len(want.keys)+want.invalid {
		t.Errorf("the imports stored %d reports in all, want %d: each once", sum.Reports, len(want.keys)+want.invalid)
	}
	if sum.Duplicates == 0 {
		t.Errorf("no report was found a duplicate: the cuts before a move did not make the import read stored messages again")
	}
}

// gatedSink answers through an inner sink, or fails or waits as told.
type gatedSink struct {
	inner          Sink
	entered        chan struct{} // receives when StoreMail begins
	release        chan struct{} // StoreMail waits for it (or ctx) before it answers
	commitThenFail atomic.Bool
}

func (g *gatedSink) StoreMail(ctx context.Context, raw []byte, detail string) (intake.MailOutcome, error) {
	if g.entered != nil {
		g.entered <- struct{}{}
	}
	if g.release != nil {
		select {
		case <-g.release:
		case <-ctx.Done():
			return intake.MailOutcome{}, ctx.Err()
		}
	}
	out, err := g.inner.StoreMail(ctx, raw, detail)
	if err == nil && g.commitThenFail.Load() {
		// The reports are committed, but the answer never arrives (the
		// process died, the sink's caller timed out).
		return intake.MailOutcome{}, errors.New("sink died before answering")
	}
	return out, err
}

// TestMovedOnlyAfterCommit: a message stays in the folder while the sink
// has not answered, and when the sink fails after committing; the run
// after that finds its reports stored and moves it.
func TestMovedOnlyAfterCommit(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	env := newStoreEnv(t)
	mails := fixtureMails(t, 1)[:1] // the two-report mail
	want := expect(t, mails)
	d.appendMsgs(t, "INBOX", mails[0].raw)

	// A sink that does not answer: the message stays while it waits, and
	// after it gives up.
	g := &gatedSink{inner: env.sink, entered: make(chan struct{}, 1), release: make(chan struct{})}
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := importOnce(t, d, g, "", func(o *Opts) { o.StoreTimeout = 3 * time.Second })
		done <- result{st, err}
	}()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the sink was not called within 30s")
	}
	checkFolders(t, d, 1, 0, 0)
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("ImportOnce did not return within 30s of the sink's timeout")
	}
	if !errors.Is(r.err, ErrSink) || len(r.st.Errors) != 1 || r.st.Processed != 0 {
		t.Errorf("sink timed out: %+v, %v; want ErrSink, one error, nothing moved", r.st, r.err)
	}
	checkFolders(t, d, 1, 0, 0)

	// A sink that commits and dies before answering.
	g = &gatedSink{inner: env.sink}
	g.commitThenFail.Store(true)
	st, err := importOnce(t, d, g, "", nil)
	if !errors.Is(err, ErrSink) || st.Processed != 0 {
		t.Errorf("sink died after commit: %+v, %v; want ErrSink, nothing moved", st, err)
	}
	checkFolders(t, d, 1, 0, 0)
	checkStored(t, env.st, want) // committed, though unanswered

	// The next run finds the reports stored and moves the message.
	st, err = importOnce(t, d, env.sink, "", nil)
	if err != nil || st.Reports != 0 || st.Duplicates != 2 || st.Processed != 1 {
		t.Errorf("rerun: %+v, %v; want 2 duplicates, the message moved", st, err)
	}
	checkFolders(t, d, 0, 1, 0)
	checkStored(t, env.st, want)
}

// TestTooLarge: a message over the limit is moved to the failed folder
// unread, and listed.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	env := newStoreEnv(t)
	mails := fixtureMails(t, 2)
	big := reportMail("big", reportJSON("Big Sender", "big-1", 1, 1))
	big = append(big[:len(big)-len("--XX--\n")], []byte("--XX\nContent-Type: text/plain\n\n")...)
	for range 400 {
		big = append(big, []byte("padding padding padding padding padding padding padding padding\n")...)
	}
	big = append(big, []byte("--XX--\n")...)
	d.appendMsgs(t, "INBOX", append(raws(mails), big)...)
	st, err := importOnce(t, d, env.sink, "", func(o *Opts) { o.MaxMessageBytes = 16 << 10 })
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Errors) != 1 || st.Failed != 2 || st.Processed != 4 {
		t.Errorf("stats %+v, want the large message in Errors and moved to the failed folder", st)
	}
	checkFolders(t, d, 0, 4, 2)
}

// failingSink fails for the messages that hold marker (all when empty).
type failingSink struct {
	inner  Sink
	marker string
}

func (f *failingSink) StoreMail(ctx context.Context, raw []byte, detail string) (intake.MailOutcome, error) {
	if f.marker == "" || bytes.Contains(raw, []byte(f.marker)) {
		return intake.MailOutcome{}, errors.New("store refused it")
	}
	return f.inner.StoreMail(ctx, raw, detail)
}

// TestSinkFailures: a message the sink keeps failing stays in the folder
// without holding up the messages after it; a sink failing every message
// (the store down) stops the pass at the first batch.
func TestSinkFailures(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	env := newStoreEnv(t)
	mails := fixtureMails(t, 9) // 12 messages, 3 batches of 4
	d.appendMsgs(t, "INBOX", raws(mails)...)

	st, err := importOnce(t, d, &failingSink{inner: env.sink}, "", nil)
	if !errors.Is(err, ErrSink) || st.Messages != 4 || len(st.Errors) != 4 || st.Processed+st.Failed != 0 {
		t.Errorf("store down: %+v, %v; want ErrSink after the first batch of 4, nothing moved", st, err)
	}
	checkFolders(t, d, 12, 0, 0)

	st, err = importOnce(t, d, &failingSink{inner: env.sink, marker: "gen-004"}, "", nil)
	if !errors.Is(err, ErrSink) || st.Messages != 12 || len(st.Errors) != 1 || st.Processed != 10 || st.Failed != 1 {
		t.Errorf("one message refused: %+v, %v; want ErrSink, the 11 others moved", st, err)
	}
	checkFolders(t, d, 1, 10, 1)

	st, err = importOnce(t, d, env.sink, "", nil)
	if err != nil || st.Messages != 1 || st.Processed != 1 {
		t.Errorf("rerun: %+v, %v", st, err)
	}
	checkFolders(t, d, 0, 11, 1)
	checkStored(t, env.st, expect(t, mails))
}

// dmarcMail is a DMARC aggregate report mail (RFC 7489 §7.2.1.1), the
// report gzipped, with records records of 2 messages each.
// A cut above 0 keeps that many bytes of the gzip: a damaged report.
func dmarcMail(t *testing.T, id string, records, cut int) []byte {
	t.Helper()
	var x strings.Builder
	fmt.Fprintf(&x, `<?xml version="1.0"?><feedback><report_metadata><org_name>Receiver</org_name><email>dmarc@receiver.example</email>`+
		`<report_id>%s</report_id><date_range><begin>1793491200</begin><end>1793577599</end></date_range></report_metadata>`+
		`<policy_published><domain>a.example</domain><p>none</p></policy_published>`, id)
	for i := range records {
		fmt.Fprintf(&x, `<record><row><source_ip>192.0.2.%d</source_ip><count>2</count><policy_evaluated><disposition>none</disposition>`+
			`<dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>a.example</header_from></identifiers>`+
			`<auth_results><spf><domain>a.example</domain><result>pass</result></spf></auth_results></record>`, i+1)
	}
	x.WriteString("</feedback>")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(x.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	data := gz.Bytes()
	if cut > 0 {
		data = data[:cut]
	}
	return []byte("From: dmarc@receiver.example\r\nTo: dmarc@reports.example.net\r\n" +
		"Subject: Report Domain: a.example Submitter: receiver.example Report-ID: <" + id + ">\r\n" +
		"Message-ID: <" + id + "@receiver.example>\r\nMIME-Version: 1.0\r\nContent-Type: application/gzip\r\n" +
		"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"r.xml.gz\"\r\n\r\n" +
		base64.StdEncoding.EncodeToString(data) + "\r\n")
}

// failureMail is a DMARC failure report (RFC 6591) about a.example.
func failureMail(id string) []byte {
	return []byte(strings.ReplaceAll(`From: dmarc-failure@receiver.example
To: ruf@reports.example.net
Subject: DMARC failure report
Message-ID: <`+id+`@receiver.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ab"

--ab
Content-Type: text/plain

A failure report.
--ab
Content-Type: message/feedback-report

Feedback-Type: auth-failure
Version: 1
Source-IP: 192.0.2.25
Reported-Domain: a.example
Auth-Failure: dmarc
Incidents: 1
--ab
Content-Type: text/rfc822-headers

From: billing@a.example
Subject: `+id+`
--ab--
`, "\n", "\r\n"))
}

// TestImportOnceDMARC: DMARC aggregate and failure reports from a
// mailbox, moved to the processed folder once committed; a damaged
// report is kept as invalid; read again, nothing is stored twice.
func TestImportOnceDMARC(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	env := newStoreEnv(t)
	damaged := dmarcMail(t, "d-3", 20, 200)
	d.appendMsgs(t, "INBOX", dmarcMail(t, "d-1", 3, 0), dmarcMail(t, "d-2", 1, 0), failureMail("f-1"), damaged,
		[]byte("From: someone@example.com\r\nSubject: hello\r\n\r\nhello\r\n"))
	for round := range 2 {
		st, err := importOnce(t, d, env.sink, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := Stats{Messages: 5, Reports: 4, Invalid: 1, Processed: 4, Failed: 1}
		if round == 1 {
			want.Reports, want.Invalid, want.Duplicates = 0, 0, 4
		}
		if st.Messages != want.Messages || st.Reports != want.Reports || st.Invalid != want.Invalid || st.Duplicates != want.Duplicates ||
			st.Processed != want.Processed || st.Failed != want.Failed || len(st.Errors) != 0 {
			t.Errorf("round %d: stats %+v, want %+v", round, st, want)
		}
		checkFolders(t, d, 0, 4*(round+1), round+1)
		ctx := context.Background()
		reps, err := env.st.DMARCReports(ctx, store.DMARCFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var msgs, invalid int64
		for _, r := range reps {
			if r.Status == store.ReportInvalid {
				invalid++
			} else {
				msgs += r.Messages
			}
			if r.Source != intake.SourceIMAP || !strings.Contains(r.SourceDetail, "message-id=") {
				t.Errorf("report %d: source %q %q", r.ID, r.Source, r.SourceDetail)
			}
		}
		fs, err := env.st.DMARCFailures(ctx, store.DMARCFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(reps) != 3 || msgs != 8 || invalid != 1 || len(fs) != 1 || fs[0].Domain != "a.example" {
			t.Errorf("round %d: %d aggregate reports (%d messages, %d invalid), %d failure reports; want 3 (8 messages, 1 invalid) and 1",
				round, len(reps), msgs, invalid, len(fs))
		}
		if round == 0 {
			// Put them back: a second delivery of the same mail.
			d.appendMsgs(t, "INBOX", dmarcMail(t, "d-1", 3, 0), dmarcMail(t, "d-2", 1, 0), failureMail("f-1"), damaged,
				[]byte("From: someone@example.com\r\nSubject: hello\r\n\r\nhello\r\n"))
		}
	}
}
