package intake

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/moatmail/moat/internal/store"
)

const testRcpt = "tlsrpt@reports.example.net"

// mapResolver answers TXT lookups from a map; names not in it do not
// exist. temp makes every lookup fail temporarily.
type mapResolver struct {
	txt  map[string][]string
	temp bool
}

func (m mapResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if m.temp {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	if v, ok := m.txt[name]; ok {
		return v, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// dkimKey is a signing key published as s1._domainkey.sender.example.
type dkimKey struct {
	priv ed25519.PrivateKey
	txt  map[string][]string
}

func newDKIMKey(t testing.TB) dkimKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return dkimKey{priv: priv, txt: map[string][]string{
		"s1._domainkey.sender.example": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)},
	}}
}

func (k dkimKey) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: "sender.example", Selector: "s1", Signer: k.priv,
		HeaderKeys: []string{"From", "To", "Subject", "TLS-Report-Domain", "TLS-Report-Submitter"},
	})
	if err != nil {
		t.Fatalf("dkim.Sign: %v", err)
	}
	return out.Bytes()
}

// reportMail builds an RFC 8460 §5.3 report message with CRLF line ends.
func reportMail(mediaType string, attachment []byte) []byte {
	var b strings.Builder
	b.WriteString("From: tlsrpt@sender.example\r\nTo: " + testRcpt + "\r\n" +
		"Subject: Report Domain: a.example Submitter: sender.example Report-ID: <r@sender.example>\r\n" +
		"TLS-Report-Domain: a.example\r\nTLS-Report-Submitter: sender.example\r\n" +
		"Message-ID: <m1@sender.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"BOUNDARY\"\r\n\r\n" +
		"--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate TLS report.\r\n" +
		"--BOUNDARY\r\nContent-Type: " + mediaType + "\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"sender.example!a.example!1!2.json.gz\"\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(attachment)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--BOUNDARY--\r\n")
	return []byte(b.String())
}

func plainMail(body string) []byte {
	return []byte("From: someone@sender.example\r\nTo: " + testRcpt + "\r\nSubject: hello\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + body + "\r\n")
}

type smtpEnv struct {
	addr      string
	st        testStore
	clientTLS *tls.Config
	srv       *SMTPServer
}

// startSMTP serves the SMTP intake on 127.0.0.1 over st (a real SQLite
// store when nil), with STARTTLS from a test CA.
func startSMTP(t *testing.T, st testStore, hosted func(string) bool, opts SMTPOpts) *smtpEnv {
	t.Helper()
	return startSMTPLogged(t, st, hosted, opts, testLogger(t))
}

// startSMTPLogged is startSMTP with the server's logger.
func startSMTPLogged(t *testing.T, st testStore, hosted func(string) bool, opts SMTPOpts, log *slog.Logger) *smtpEnv {
	t.Helper()
	if st == nil {
		st = openStore(t)
	}
	ing := startIngester(t, st, hosted, IngestOpts{})
	return startSMTPServer(t, ing, st, opts, log)
}

// startSMTPWith serves the SMTP intake on 127.0.0.1 for ing, which stores
// in st.
func startSMTPWith(t *testing.T, ing *Ingester, st testStore, opts SMTPOpts) *smtpEnv {
	t.Helper()
	return startSMTPServer(t, ing, st, opts, testLogger(t))
}

func startSMTPServer(t *testing.T, ing *Ingester, st testStore, opts SMTPOpts, log *slog.Logger) *smtpEnv {
	t.Helper()
	serverTLS, clientTLS := testTLS(t)
	if opts.TLSConfig == nil {
		opts.TLSConfig = serverTLS
	}
	if opts.Recipients == nil {
		opts.Recipients = []string{testRcpt}
	}
	if opts.Hostname == "" {
		opts.Hostname = "reports.example.net"
	}
	srv := NewSMTPServer(log, ing, opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &smtpEnv{addr: l.Addr().String(), st: st, clientTLS: clientTLS, srv: srv}
}

// dial connects a client, with STARTTLS when useTLS.
func (e *smtpEnv) dial(t *testing.T, useTLS bool) *smtp.Client {
	t.Helper()
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	var c *smtp.Client
	if useTLS {
		c, err = smtp.NewClientStartTLS(conn, e.clientTLS)
		if err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
	} else {
		c = smtp.NewClient(conn)
		if err := c.Hello("client.example"); err != nil {
			t.Fatalf("EHLO: %v", err)
		}
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// send delivers msg to rcpt and returns the final reply (text or error).
func (e *smtpEnv) send(t *testing.T, useTLS bool, rcpt string, msg []byte) (string, error) {
	t.Helper()
	c := e.dial(t, useTLS)
	if err := c.Mail("tlsrpt@sender.example", nil); err != nil {
		return "", err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return "", err
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(msg); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	_ = c.Quit()
	return resp.StatusText, nil
}

func smtpCode(err error) (int, string) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code, se.Message
	}
	return 0, fmt.Sprint(err)
}

// storedID returns the report id a 250 text names: the first "report N".
func storedID(t *testing.T, text string) int64 {
	t.Helper()
	for rest := text; ; {
		i := strings.Index(rest, "report ")
		if i < 0 {
			t.Fatalf("reply %q names no report", text)
		}
		var id int64
		if _, err := fmt.Sscanf(rest[i:], "report %d", &id); err == nil {
			return id
		}
		rest = rest[i+len("report "):]
	}
}

func TestSMTPReceivesReport(t *testing.T) {
	t.Parallel()
	key := newDKIMKey(t)
	e := startSMTP(t, nil, nil, SMTPOpts{Resolver: mapResolver{txt: key.txt}})
	js := reportJSON("Sender", "smtp-1", "a.example", 20, 1)
	msg := key.sign(t, reportMail("application/tlsrpt+gzip", gzipped(t, js)))
	text, err := e.send(t, true, testRcpt, msg)
	if err != nil {
		t.Fatalf("delivery: %v", err)
	}
	id := storedID(t, text)
	got, err := e.st.TLSRPTReportByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != SourceSMTP || got.DKIM != DKIMPass || got.ReportID != "smtp-1" || got.Status != store.ReportOK ||
		!strings.Contains(got.SourceDetail, "from=<tlsrpt@sender.example>") || got.MediaType != "application/tlsrpt+gzip" {
		t.Errorf("stored source %q detail %q dkim %q id %q status %q type %q", got.Source, got.SourceDetail, got.DKIM,
			got.ReportID, got.Status, got.MediaType)
	}
	// The same mail again: a duplicate, still accepted.
	text, err = e.send(t, true, testRcpt, msg)
	if err != nil || !strings.Contains(text, "already received") || storedID(t, text) != id {
		t.Errorf("second delivery: %q, %v; want a duplicate of %d", text, err, id)
	}
}

func TestSMTPDKIM(t *testing.T) {
	t.Parallel()
	key := newDKIMKey(t)
	other := newDKIMKey(t) // signs, but is not the published key
	body := func(n int) []byte {
		return reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("Sender", fmt.Sprint("dkim-", n), "a.example", 1, 0)))
	}
	tampered := key.sign(t, body(3))
	tampered = bytes.Replace(tampered, []byte("aggregate TLS report"), []byte("aggregate TLS REPORT"), 1)
	cases := []struct {
		name     string
		msg      []byte
		resolver Resolver
		want     string
	}{
		{"good signature", key.sign(t, body(1)), mapResolver{txt: key.txt}, DKIMPass},
		{"wrong key", other.sign(t, body(2)), mapResolver{txt: key.txt}, DKIMFail},
		{"body changed", tampered, mapResolver{txt: key.txt}, DKIMFail},
		{"key not published", key.sign(t, body(4)), mapResolver{}, DKIMFail},
		{"unsigned", body(5), mapResolver{txt: key.txt}, DKIMNone},
		{"key lookup fails temporarily", key.sign(t, body(6)), mapResolver{temp: true}, DKIMFail},
	}
	for _, require := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("require=%v/%s", require, tc.name), func(t *testing.T) {
				e := startSMTP(t, nil, nil, SMTPOpts{Resolver: tc.resolver, RequireDKIM: require})
				text, err := e.send(t, true, testRcpt, tc.msg)
				if !require || tc.want == DKIMPass {
					if err != nil {
						t.Fatalf("delivery: %v", err)
					}
					got, err := e.st.TLSRPTReportByID(context.Background(), storedID(t, text))
					if err != nil || got.DKIM != tc.want {
						t.Errorf("stored DKIM %q (%v), want %q", got.DKIM, err, tc.want)
					}
					return
				}
				code, msg := smtpCode(err)
				wantCode, wantText := 550, "DKIM "+tc.want
				if tc.name == "key lookup fails temporarily" {
					wantCode, wantText = 451, "temporarily"
				}
				if code != wantCode || !strings.Contains(msg, wantText) {
					t.Errorf("reply %d %q, want %d naming %q", code, msg, wantCode, wantText)
				}
				if n, _ := e.st.CountTLSRPTReports(context.Background(), store.ReportFilter{}); n != 0 {
					t.Errorf("%d reports stored, want none", n)
				}
			})
		}
	}
}

func TestSMTPRecipients(t *testing.T) {
	t.Parallel()
	e := startSMTP(t, nil, nil, SMTPOpts{Resolver: mapResolver{}, MaxRecipients: 2})
	c := e.dial(t, true)
	if err := c.Mail("a@sender.example", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rcpt     string
		code     int
		wantText string
	}{
		{"postmaster@reports.example.net", 550, "no such mailbox"},
		{"victim@elsewhere.example", 550, "relaying denied"},
		{"TLSRPT@Reports.Example.NET", 0, ""},
		{testRcpt, 0, ""},
		{testRcpt, 452, "limit"}, // MaxRecipients
	}
	for _, tc := range tests {
		code, msg := smtpCode(c.Rcpt(tc.rcpt, nil))
		if code != tc.code || !strings.Contains(msg, tc.wantText) {
			t.Errorf("RCPT %s: %d %q, want %d %q", tc.rcpt, code, msg, tc.code, tc.wantText)
		}
		if tc.code == 550 && !strings.Contains(msg, testRcpt) {
			t.Errorf("RCPT %s: %q does not say which address is accepted", tc.rcpt, msg)
		}
	}
	var se *smtp.SMTPError
	if err := c.Rcpt("x@elsewhere.example", nil); !errors.As(err, &se) || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) && se.Code != 452 {
		t.Errorf("relay attempt: %v", err)
	}
}

func TestSMTPSizeLimit(t *testing.T) {
	t.Parallel()
	e := startSMTP(t, nil, nil, SMTPOpts{Resolver: mapResolver{}, MaxMessageBytes: 4096})
	c := e.dial(t, true)
	if ok, size := c.Extension("SIZE"); !ok || size != "4096" {
		t.Errorf("SIZE extension %v %q, want 4096", ok, size)
	}
	// Declared too large at MAIL (RFC 1870).
	code, msg := smtpCode(c.Mail("a@sender.example", &smtp.MailOptions{Size: 5000}))
	if code != 552 {
		t.Errorf("MAIL SIZE=5000: %d %q, want 552", code, msg)
	}
	// Not declared, but too large.
	big := reportMail("application/tlsrpt+json", bytes.Repeat([]byte("{"), 6000))
	_, err := e.send(t, true, testRcpt, big)
	if code, msg := smtpCode(err); code != 552 {
		t.Errorf("oversized message: %d %q, want 552", code, msg)
	}
	if n, _ := e.st.CountTLSRPTReports(context.Background(), store.ReportFilter{}); n != 0 {
		t.Errorf("%d reports stored, want none", n)
	}
}

// TestSMTPLineTooLong: a line of 16 KB without a line break in the
// message gets a permanent 500 (RFC 5321 §4.5.3.1.10), not a 451 that
// would make the sender retry the same message forever.
func TestSMTPLineTooLong(t *testing.T) {
	t.Parallel()
	e := startSMTP(t, nil, nil, SMTPOpts{Resolver: mapResolver{}})
	// The server stops parsing at the long line but must read the rest
	// before it answers and closes: with unread bytes the close resets
	// the connection and the sender, still writing, never sees the 500
	// (this failed about once in a hundred runs at 16 KB; 2 MB is more
	// than the socket buffers hold, so it would fail every time).
	for _, n := range []int{16 << 10, 2 << 20} {
		long := "Subject: x\r\n\r\n" + strings.Repeat("A", n) + "\r\n"
		_, err := e.send(t, false, testRcpt, []byte(long))
		code, msg := smtpCode(err)
		if code != 500 || !strings.Contains(msg, "line too long") {
			t.Errorf("%d-byte line: %d %q, want 500 line too long", n, code, msg)
		}
	}
	if n, _ := e.st.CountTLSRPTReports(context.Background(), store.ReportFilter{}); n != 0 {
		t.Errorf("%d reports stored, want none", n)
	}
}

func TestSMTPTLS(t *testing.T) {
	t.Parallel()
	t.Run("STARTTLS offered and RequireTLS enforced", func(t *testing.T) {
		e := startSMTP(t, nil, nil, SMTPOpts{Resolver: mapResolver{}, RequireTLS: true})
		c := e.dial(t, false)
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Error("STARTTLS not advertised")
		}
		if code, msg := smtpCode(c.Mail("a@sender.example", nil)); code != 530 {
			t.Errorf("MAIL before STARTTLS: %d %q, want 530", code, msg)
		}
		text, err := e.send(t, true, testRcpt, reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("S", "tls", "a.example", 1, 0))))
		if err != nil || !strings.Contains(text, "report stored") {
			t.Errorf("delivery over TLS: %q, %v", text, err)
		}
	})
	t.Run("no TLS configured", func(t *testing.T) {
		ing := startIngester(t, openStore(t), nil, IngestOpts{})
		srv := NewSMTPServer(nil, ing, SMTPOpts{Recipients: []string{testRcpt}, Resolver: mapResolver{}})
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, l) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}()
		e := &smtpEnv{addr: l.Addr().String()}
		c := e.dial(t, false)
		if ok, _ := c.Extension("STARTTLS"); ok {
			t.Error("STARTTLS advertised without a TLS configuration")
		}
		if err := c.Quit(); err != nil {
			t.Error(err)
		}
	})
}

func TestSMTPContent(t *testing.T) {
	t.Parallel()
	e := startSMTP(t, nil, nil, SMTPOpts{Resolver: mapResolver{}})
	ctx := context.Background()
	t.Run("not a report", func(t *testing.T) {
		_, err := e.send(t, true, testRcpt, plainMail("Hello, how are you?"))
		code, msg := smtpCode(err)
		if code != 550 || !strings.Contains(msg, "no TLS report") {
			t.Errorf("plain mail: %d %q, want 550 5.6.0 with the reason", code, msg)
		}
	})
	t.Run("invalid report kept", func(t *testing.T) {
		text, err := e.send(t, true, testRcpt, reportMail("application/tlsrpt+json", []byte(`{"organization-name": "X", "policies": 7}`)))
		if err != nil || !strings.Contains(text, "invalid report kept") {
			t.Fatalf("invalid report: %q, %v; want 250 saying it was kept", text, err)
		}
		got, err := e.st.TLSRPTReportByID(ctx, storedID(t, text))
		if err != nil || got.Status != store.ReportInvalid || got.Error == "" {
			t.Errorf("stored %+v, %v; want invalid with its reason", got, err)
		}
	})
	t.Run("submitter mismatch kept as a warning", func(t *testing.T) {
		msg := bytes.Replace(reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("S", "mismatch", "a.example", 1, 0))),
			[]byte("TLS-Report-Submitter: sender.example"), []byte("TLS-Report-Submitter: other.example"), 1)
		text, err := e.send(t, true, testRcpt, msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.st.TLSRPTReportByID(ctx, storedID(t, text))
		if err != nil || got.Status != store.ReportWarnings || !strings.Contains(strings.Join(got.Warnings, "\n"), `TLS-Report-Submitter "other.example"`) {
			t.Errorf("stored status %q warnings %q (%v), want the submitter mismatch", got.Status, got.Warnings, err)
		}
	})
	t.Run("BDAT (RFC 3030)", func(t *testing.T) {
		msg := reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("S", "bdat", "a.example", 1, 0)))
		conn, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "EHLO c.example\r\nMAIL FROM:<r@sender.example>\r\nRCPT TO:<%s>\r\nBDAT %d LAST\r\n%s", testRcpt, len(msg), msg)
		br := bufio.NewReader(conn)
		var last string
		for !strings.Contains(last, "(report ") && !strings.HasPrefix(last, "5") && !strings.HasPrefix(last, "4") {
			if last, err = br.ReadString('\n'); err != nil {
				t.Fatalf("read reply: %v (last %q)", err, last)
			}
		}
		if !strings.HasPrefix(last, "250 2.0.0 report stored") {
			t.Errorf("BDAT reply %q, want 250 report stored", last)
		}
	})
	t.Run("bare JSON body", func(t *testing.T) {
		msg := "From: r@sender.example\r\nTo: " + testRcpt + "\r\nSubject: report\r\nContent-Type: application/json\r\n\r\n" +
			string(reportJSON("S", "bare", "a.example", 3, 0)) + "\r\n"
		text, err := e.send(t, true, testRcpt, []byte(msg))
		if err != nil || !strings.Contains(text, "report stored") {
			t.Errorf("bare JSON mail: %q, %v", text, err)
		}
	})
}

func TestSMTPStoreFailure(t *testing.T) {
	t.Parallel()
	fs := &fakeStore{fail: func([]*store.TLSRPTReport) error { return errors.New("disk on fire") }}
	e := startSMTP(t, fs, nil, SMTPOpts{Resolver: mapResolver{}})
	_, err := e.send(t, true, testRcpt, reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("S", "f", "a.example", 1, 0))))
	if code, msg := smtpCode(err); code != 451 || strings.Contains(msg, "fire") {
		t.Errorf("store failure: %d %q, want 451 without internals", code, msg)
	}
}

func TestSMTPPanicRecovered(t *testing.T) {
	t.Parallel()
	hosted := func(string) bool { panic("bug in hosted") }
	e := startSMTP(t, nil, hosted, SMTPOpts{Resolver: mapResolver{}})
	_, err := e.send(t, true, testRcpt, reportMail("application/tlsrpt+gzip", gzipped(t, reportJSON("S", "p", "a.example", 1, 0))))
	if code, msg := smtpCode(err); code != 421 {
		t.Errorf("panic in DATA: %d %q, want 421", code, msg)
	}
	// The server goes on serving.
	c := e.dial(t, true)
	if err := c.Noop(); err != nil {
		t.Errorf("NOOP after a panic: %v", err)
	}
}

func TestSMTPConnectionLimits(t *testing.T) {
	t.Parallel()
	e := startSMTP(t, nil, nil, SMTPOpts{Resolver: mapResolver{}, MaxConnectionsPerIP: 1})
	greeting := func(conn net.Conn) string {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatalf("read greeting: %v", err)
		}
		return line
	}
	first, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if g := greeting(first); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("first connection greeted %q", g)
	}
	second, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if g := greeting(second); !strings.HasPrefix(g, "421 4.7.0") {
		t.Errorf("second connection greeted %q, want 421 4.7.0", g)
	}
	// Once the first connection is gone, a new one is accepted.
	if _, err := fmt.Fprintf(first, "QUIT\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(first).ReadString('\n'); err != nil { // 221
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := first.Read(buf); err == nil { // server closes: EOF
		t.Fatal("connection still open after QUIT")
	}
	third, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if g := greeting(third); !strings.HasPrefix(g, "220 ") {
		t.Errorf("connection after the first ended greeted %q, want 220", g)
	}
}

func TestSMTPShutdown(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ing := startIngester(t, st, nil, IngestOpts{})
	srv := NewSMTPServer(nil, ing, SMTPOpts{Recipients: []string{testRcpt}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Shutdown: %v, want nil", err)
	}
}

// FuzzUnsigned: when unsigned says a message has no DKIM-Signature, the
// verifier finds none and reads its header without error, so skipping it
// changes nothing.
func FuzzUnsigned(f *testing.F) {
	key := newDKIMKey(f)
	f.Add([]byte("From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("From: a@example.com\nDKIM-Signature: v=1\n\nbody"))
	f.Add([]byte("From: a@example.com\r\n dkim-signature : folded\r\n\r\n"))
	f.Add([]byte("dKiM-SiGnAtUrE : v=1\r\n\r\n"))
	f.Add([]byte("\r\nbody only"))
	f.Add([]byte("From: a@example.com\r\nno end of header"))
	f.Add(key.sign(f, reportMail("application/tlsrpt+json", []byte(rfcExample))))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !unsigned(data) {
			return
		}
		lookup := func(string) ([]string, error) { return nil, errors.New("no lookups in this test") }
		verifs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: 8})
		if err != nil || len(verifs) != 0 {
			t.Fatalf("unsigned(%q), but the verifier gives %d results, %v", data, len(verifs), err)
		}
	})
}

func TestUnsigned(t *testing.T) {
	t.Parallel()
	for data, want := range map[string]bool{
		"From: a@example.com\r\nSubject: x\r\n\r\nDKIM-Signature in the body\r\n": true,
		"From: a@example.com\nSubject: x\n\nbody":                                 true,
		"\r\nbody": true,
		"From: a@example.com\r\nDKIM-Signature: v=1\r\n\r\n":        false,
		"From: a@example.com\r\n\tdkim-SIGNATURE folded in\r\n\r\n": false,
		"From: a@example.com\r\nno empty line":                      false,
		"":                                                          false,
	} {
		if got := unsigned([]byte(data)); got != want {
			t.Errorf("unsigned(%q) = %v, want %v", data, got, want)
		}
	}
}
