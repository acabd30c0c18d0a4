package imapintake

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/server"
	"github.com/moatmail/moat/internal/store"
)

// runPoller runs a poller of mb until the test ends, and returns a channel
// of its passes' stats.
func runPoller(t *testing.T, mb config.IMAPURL, password string, sink Sink, opts Opts) <-chan Stats {
	t.Helper()
	passes := make(chan Stats, 100)
	opts.OnPass = func(st Stats, err error) {
		if err == nil {
			select {
			case passes <- st:
			default:
			}
		}
	}
	p, err := NewPoller(testLogger(t), mb, password, sink, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the poller did not stop within 30s")
		}
	})
	return passes
}

// waitFor waits until cond holds, checking every 50ms, for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nextPass waits at most d for a pass.
func nextPass(t *testing.T, passes <-chan Stats, d time.Duration, what string) Stats {
	t.Helper()
	select {
	case st := <-passes:
		return st
	case <-time.After(d):
		t.Fatalf("%s: no pass within %s", what, d)
		return Stats{}
	}
}

func reportCount(t *testing.T, st store.Store) int64 {
	t.Helper()
	n, err := st.CountTLSRPTReports(context.Background(), store.ReportFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPollerIdle: the poller empties the folder, then idles (RFC 2177) and
// takes a message appended later at once: its poll interval is an hour,
// so only the server's EXISTS can wake it.
func TestPollerIdle(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	env := newStoreEnv(t)
	mails := fixtureMails(t, 3)
	d.appendMsgs(t, "INBOX", raws(mails)...)
	opts := testOpts(d)
	opts.PollInterval = time.Hour
	passes := runPoller(t, d.url(t, "INBOX", ""), d.password, env.sink, opts)
	if st := nextPass(t, passes, 30*time.Second, "first pass"); st.Processed != 5 || st.Failed != 1 {
		t.Errorf("first pass: %+v", st)
	}
	for i := range 3 {
		id := fmt.Sprintf("late-%d", i)
		d.appendMsgs(t, "INBOX", reportMail(id, reportJSON("Late Sender", id, 1, 0)))
		waitFor(t, 10*time.Second, "the appended message taken while idling", func() bool {
			return reportCount(t, env.st) == int64(len(expect(t, mails).keys))+2+int64(i)
		})
	}
	waitFor(t, 10*time.Second, "the messages moved", func() bool { return d.state(t, "Moat/Processed").messages == 8 })
	checkFolders(t, d, 0, 8, 1)
}

// TestPollerFallbacks: a server without IDLE and MOVE, with "." as its
// hierarchy separator: the poller polls, and moves by COPY, STORE
// \Deleted and UID EXPUNGE (RFC 4315).
func TestPollerFallbacks(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{Dot: true, Caps: "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS NAMESPACE"})
	env := newStoreEnv(t)
	mails := fixtureMails(t, 5)
	d.appendMsgs(t, "INBOX", raws(mails)...)
	opts := testOpts(d)
	opts.PollInterval = 200 * time.Millisecond
	passes := runPoller(t, d.url(t, "INBOX", ""), d.password, env.sink, opts)
	if st := nextPass(t, passes, 30*time.Second, "first pass"); st.Processed != 7 || st.Failed != 1 {
		t.Errorf("first pass: %+v", st)
	}
	d.appendMsgs(t, "INBOX", reportMail("polled", reportJSON("Polled Sender", "polled-1", 3, 0)))
	waitFor(t, 10*time.Second, "the appended message taken by polling", func() bool {
		return d.state(t, "Moat/Processed").messages == 8
	})
	checkFolders(t, d, 0, 8, 1)
	want := expect(t, append(mails, testMail{raw: reportMail("polled", reportJSON("Polled Sender", "polled-1", 3, 0)), reports: 1}))
	checkStored(t, env.st, want)
}

// countingSink counts the messages handed to it.
type countingSink struct {
	inner Sink
	calls atomic.Int64
}

func (c *countingSink) StoreMail(ctx context.Context, raw []byte, detail string) (intake.MailOutcome, error) {
	c.calls.Add(1)
	return c.inner.StoreMail(ctx, raw, detail)
}

// TestPollerReconnect: connections cut under the poller (while it idles,
// in the middle of a fetch, before a move) are made again, with backoff,
// and nothing is lost or doubled. A message whose reports were stored but
// whose move was cut is moved by the next session without being stored
// again (the UIDs remembered within the UIDVALIDITY).
func TestPollerReconnect(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	p := startProxy(t, d.addr)
	env := newStoreEnv(t)
	sink := &countingSink{inner: env.sink}
	mails := fixtureMails(t, 6)
	opts := testOpts(d)
	opts.PollInterval = time.Hour
	mb, err := ParseURL(fmt.Sprintf("imap://%s@%s/INBOX", d.user, p.addr()))
	if err != nil {
		t.Fatal(err)
	}
	passes := runPoller(t, mb, d.password, sink, opts)
	nextPass(t, passes, 30*time.Second, "first pass")
	p.cutAll() // while idling
	p.arm(cutRule{down: true, marker: []byte("BODY[] {"), nth: 2, after: 50})
	d.appendMsgs(t, "INBOX", raws(mails)...)
	waitFor(t, 30*time.Second, "every message taken after the cuts", func() bool {
		return d.state(t, "Moat/Processed").messages == 8 && d.state(t, "Moat/Failed").messages == 1
	})
	if cuts, armed := p.done(); cuts != 1 || armed {
		t.Errorf("%d cuts, armed %v: the fetch was not cut", cuts, armed)
	}

	p.arm(cutRule{marker: []byte("UID MOVE"), nth: 1})
	var more []testMail
	for i := range 3 {
		id := fmt.Sprintf("after-move-cut-%d", i)
		more = append(more, testMail{raw: reportMail(id, reportJSON("Cut Sender", id, 5, 1)), reports: 1})
	}
	d.appendMsgs(t, "INBOX", raws(more)...)
	waitFor(t, 30*time.Second, "the messages moved after the cut", func() bool {
		return d.state(t, "Moat/Processed").messages == 11
	})
	if cuts, armed := p.done(); cuts != 2 || armed {
		t.Errorf("%d cuts, armed %v: the move was not cut", cuts, armed)
	}
	if n := sink.calls.Load(); n != int64(len(mails)+len(more)) {
		t.Errorf("the sink got %d messages, want %d: each once", n, len(mails)+len(more))
	}
	checkFolders(t, d, 0, 11, 1)
	checkStored(t, env.st, expect(t, append(mails, more...)))
}

// TestPollerStop: a stop while the sink is storing waits for its answer
// and the move, then Run returns.
func TestPollerStop(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	env := newStoreEnv(t)
	g := &gatedSink{inner: env.sink, entered: make(chan struct{}, 1), release: make(chan struct{})}
	p, err := NewPoller(testLogger(t), d.url(t, "INBOX", ""), d.password, g, testOpts(d))
	if err != nil {
		t.Fatal(err)
	}
	d.appendMsgs(t, "INBOX", reportMail("stop-1", reportJSON("Stop Sender", "stop-1", 1, 0)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the sink was not called within 30s")
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) before the sink answered", err)
	case <-time.After(300 * time.Millisecond):
	}
	checkFolders(t, d, 1, 0, 0)
	close(g.release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of the answer")
	}
	checkFolders(t, d, 0, 1, 0)
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "moat.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPart runs the IMAP intake in the assembly of `moat serve`, from the
// configuration.
func TestPart(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, dovecotOpts{})
	flags := map[string]string{
		"dev": "true", "data": t.TempDir(), "zone": "sts.test", "dns-listen": "127.0.0.1:0", "https-listen": "",
		"http-listen": "", "smtp-listen": "", "web-listen": "",
	}
	yaml := fmt.Sprintf("intake:\n  imap:\n    - url: imap://%s@%s/INBOX\n      password: %q\n      poll_interval: 1h\n", d.user, d.addr, d.password)
	c, err := config.Load(config.Source{Flags: flags, File: writeConfig(t, yaml)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), slog.New(slog.DiscardHandler), store.Options{DataDir: c.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	srv, err := server.New(testLogger(t), c, st, server.Options{Parts: []server.PartFunc{NewPart(testLogger(t), c.Intake.IMAP, "")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(shutdown)
	mails := fixtureMails(t, 2)
	d.appendMsgs(t, "INBOX", raws(mails)...)
	waitFor(t, 30*time.Second, "the reports stored by the part", func() bool {
		return d.state(t, "Moat/Processed").messages == 4
	})
	checkStored(t, st, expect(t, mails))
	reps, err := st.TLSRPTReports(t.Context(), store.ReportFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) == 0 || reps[0].Source != "imap" {
		t.Errorf("reports %+v, want source imap", reps)
	}
	shutdown()
}
