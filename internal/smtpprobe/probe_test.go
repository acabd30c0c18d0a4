package smtpprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/testpki"
)

var (
	jan1  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dec31 = time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	// now is the probes' clock: 2026-11-23, 38 days before dec31.
	now = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
)

const zone = `
mx1.example.com.  A 127.0.0.1
two.example.com.  A 127.0.0.2
two.example.com.  A 127.0.0.1
`

func opts(t *testing.T, port int, ca *testpki.CA) Opts {
	srv := dnstest.Start(t, zone, nil)
	o := Opts{Resolver: srv.Resolver(), Port: port, Timeout: 3 * time.Second, Now: func() time.Time { return now }}
	if ca != nil {
		o.RootCAs = ca.Pool
	}
	return o
}

func stepNames(r *Result) []string {
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	return names
}

func TestProbeValid(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Moat Test CA")
	cert := issue(t, ca, jan1, dec31, "mx1.example.com")
	port := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	r := Probe(context.Background(), "MX1.example.com.", opts(t, port, ca))
	if r.Err != nil || r.Reason != "" {
		t.Fatalf("err %v, reason %q", r.Err, r.Reason)
	}
	if !r.Connected || !r.STARTTLS || !r.Verified || r.TLSVersion != tls.VersionTLS13 || r.CipherSuite == 0 {
		t.Errorf("got %+v", r)
	}
	if r.Addr != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)) {
		t.Errorf("addr %v", r.Addr)
	}
	if !strings.Contains(r.Banner, "mx.test") || !slices.Contains(r.EHLO, "STARTTLS") {
		t.Errorf("banner %q, EHLO %q", r.Banner, r.EHLO)
	}
	if r.ExpiresIn != 38*24*time.Hour {
		t.Errorf("expires in %v, want 38 days", r.ExpiresIn)
	}
	if len(r.Chain) != 1 || r.Chain[0].Subject.CommonName != "mx1.example.com" || len(r.Warnings) != 0 {
		t.Errorf("chain %v, warnings %q", r.Chain, r.Warnings)
	}
	want := []string{"resolve", "connect", "banner", "ehlo", "starttls", "handshake", "quit"}
	if got := stepNames(r); !slices.Equal(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
}

func TestProbeCertificateProblems(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Moat Test CA")
	other := testpki.NewCA(t, "Other CA")
	tests := []struct {
		name   string
		cert   tls.Certificate
		reason string
		expiry time.Duration
		x509   string // the x509 errors Err wraps: name, chain, expired
	}{
		{"expired", issue(t, ca, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), "mx1.example.com"),
			"expired on 2026-01-02 (325 days ago)", -325 * 24 * time.Hour, "expired"},
		{"not yet valid", issue(t, ca, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 12, 1, 0, 0, 0, 0, time.UTC), "mx1.example.com"),
			"not valid before 2026-12-01 (in 8 days)", 373 * 24 * time.Hour, "expired"},
		{"wrong name", issue(t, ca, jan1, dec31, "mail.example.net"),
			"certificate for mail.example.net, not mx1.example.com", 38 * 24 * time.Hour, "name"},
		{"wildcard too deep", issue(t, ca, jan1, dec31, "*.com", "*.mx1.example.com"),
			"certificate for *.com, *.mx1.example.com, not mx1.example.com", 38 * 24 * time.Hour, "name"},
		{"self-signed", issue(t, nil, jan1, dec31, "mx1.example.com"),
			"self-signed", 38 * 24 * time.Hour, "chain"},
		{"unknown authority", issue(t, other, jan1, dec31, "mx1.example.com"),
			"signed by an unknown authority (issuer CN=Other CA); the server sent no intermediate certificate", 38 * 24 * time.Hour, "chain"},
		{"everything wrong", issue(t, nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), "localhost"),
			"self-signed; certificate for localhost, not mx1.example.com; expired on 2026-11-22 (less than a day ago)", -12 * time.Hour, "chain name expired"},
	}
	for _, tc := range tests {
		port := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{tc.cert}})

		r := Probe(context.Background(), "mx1.example.com", opts(t, port, ca))
		if r.Reason != tc.reason || !errors.Is(r.Err, ErrCertificate) || r.Verified {
			t.Errorf("%s: reason %q, err %v; want %q", tc.name, r.Reason, r.Err, tc.reason)
		}
		var ce *CertError
		if !errors.As(r.Err, &ce) || ce.Reason != r.Reason || len(ce.Errs) != strings.Count(tc.reason, ";")+1-strings.Count(tc.reason, "; the server sent") {
			t.Errorf("%s: error %#v", tc.name, r.Err)
		}
		var hostErr x509.HostnameError
		var authErr x509.UnknownAuthorityError
		var invErr x509.CertificateInvalidError
		hasX509 := map[string]bool{
			"name":    errors.As(r.Err, &hostErr),
			"chain":   errors.As(r.Err, &authErr),
			"expired": errors.As(r.Err, &invErr) && invErr.Reason == x509.Expired,
		}
		for kind, has := range hasX509 {
			if want := strings.Contains(tc.x509, kind); has != want {
				t.Errorf("%s: x509 %s error: %v, want %v", tc.name, kind, has, want)
			}
		}
		if r.ExpiresIn != tc.expiry || !r.STARTTLS || r.TLSVersion == 0 || len(r.Chain) != 1 {
			t.Errorf("%s: got %+v", tc.name, r)
		}
	}
}

func TestProbeWithIntermediate(t *testing.T) {
	t.Parallel()
	root := testpki.NewCA(t, "Root")
	inter := testpki.NewCA(t, "Intermediate")
	// Re-sign the intermediate with the root.
	der, err := x509CreateIntermediate(root, inter)
	if err != nil {
		t.Fatal(err)
	}
	leaf := issue(t, inter, jan1, dec31, "mx1.example.com")
	leaf.Certificate = append(leaf.Certificate, der)
	port := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{leaf}})
	r := Probe(context.Background(), "mx1.example.com", opts(t, port, root))
	if !r.Verified || r.Err != nil || len(r.Chain) != 2 {
		t.Errorf("with intermediate: %q %v", r.Reason, r.Err)
	}
	// Without the intermediate the chain is incomplete.
	leaf.Certificate = leaf.Certificate[:1]
	port = startSMTP(t, &tls.Config{Certificates: []tls.Certificate{leaf}})
	r = Probe(context.Background(), "mx1.example.com", opts(t, port, root))
	if want := "signed by an unknown authority (issuer CN=Intermediate); the server sent no intermediate certificate"; r.Reason != want {
		t.Errorf("without intermediate: %q", r.Reason)
	}
}

func TestProbeNoSTARTTLS(t *testing.T) {
	t.Parallel()
	port := startSMTP(t, nil)
	r := Probe(context.Background(), "mx1.example.com", opts(t, port, nil))
	if r.Reason != "server offers no STARTTLS" || !errors.Is(r.Err, ErrNoSTARTTLS) || r.STARTTLS || !r.Connected || r.TLSVersion != 0 {
		t.Errorf("got %+v", r)
	}
	if got := stepNames(r); !slices.Equal(got, []string{"resolve", "connect", "banner", "ehlo", "quit"}) {
		t.Errorf("steps %q", got)
	}
}

func TestProbeTLS10Only(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Moat Test CA")
	cert := issue(t, ca, jan1, dec31, "mx1.example.com")
	port := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10})
	r := Probe(context.Background(), "mx1.example.com", opts(t, port, ca))
	if errors.Is(r.Err, ErrTLS) {
		t.Skipf("this Go's crypto/tls will not negotiate TLS 1.0 here: %s", r.Reason)
	}
	if r.TLSVersion != tls.VersionTLS10 || !r.Verified || len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "TLS 1.0 negotiated") {
		t.Errorf("got version %x, warnings %q, reason %q", r.TLSVersion, r.Warnings, r.Reason)
	}
}

func TestProbeFailures(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: take one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()

	hangAfterEHLO := startScript(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "220 hang.test ESMTP\r\n")
		br.ReadString('\n')
		io.Copy(io.Discard, br) // until the client gives up
	})
	silent := startScript(t, func(c net.Conn, br *bufio.Reader) {
		io.Copy(io.Discard, br)
	})
	refuse554 := startScript(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "554-refuse.test\r\n554 go away\r\n")
		br.ReadString('\n')
		io.WriteString(c, "221 bye\r\n")
	})
	starttls454 := startScript(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "220 t.test\r\n")
		br.ReadString('\n')
		io.WriteString(c, "250-t.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
		br.ReadString('\n')
		io.WriteString(c, "454 4.7.0 TLS not available\r\n")
		br.ReadString('\n')
		io.WriteString(c, "221 bye\r\n")
	})
	garbage := startScript(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "220 g.test\r\n")
		br.ReadString('\n')
		io.WriteString(c, "250-g.test\r\n251 mixed codes\r\n")
	})
	longLine := startScript(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "220 "+strings.Repeat("x", 5000)+"\r\n")
	})
	injected := startScript(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "220 i.test\r\n")
		br.ReadString('\n')
		io.WriteString(c, "250-i.test\r\n250 STARTTLS\r\n")
		br.ReadString('\n')
		io.WriteString(c, "220 go ahead\r\n250 injected\r\n")
	})
	closeAfterBanner := startScript(t, func(c net.Conn, br *bufio.Reader) {
		io.WriteString(c, "220 c.test\r\n")
		br.ReadString('\n')
	})

	short := func(port int) Opts {
		o := opts(t, port, nil)
		o.Timeout = 300 * time.Millisecond
		return o
	}
	tests := []struct {
		name   string
		host   string
		opts   Opts
		reason string
		err    error
	}{
		{"refused", "mx1.example.com", opts(t, closed, nil), fmt.Sprintf("connection refused on 127.0.0.1:%d", closed), ErrConnect},
		{"unknown host", "nx.example.com", opts(t, closed, nil), "cannot resolve nx.example.com", ErrResolve},
		{"hang after EHLO", "mx1.example.com", short(hangAfterEHLO), "timeout after EHLO", ErrTimeout},
		{"no banner", "mx1.example.com", short(silent), "timeout waiting for the banner", ErrTimeout},
		{"554 banner", "mx1.example.com", opts(t, refuse554, nil), "server refused the session: 554 refuse.test go away", ErrProtocol},
		{"STARTTLS refused", "mx1.example.com", opts(t, starttls454, nil), "STARTTLS refused: 454 4.7.0 TLS not available", ErrProtocol},
		{"mixed codes", "mx1.example.com", opts(t, garbage, nil), "reply code changes from 250 to 251 within one reply after EHLO", ErrProtocol},
		{"long line", "mx1.example.com", opts(t, longLine, nil), "reply line longer than 1024 bytes waiting for the banner", ErrProtocol},
		{"injection", "mx1.example.com", opts(t, injected, nil), "server sent data after its STARTTLS reply, before the TLS handshake", ErrProtocol},
		{"closed", "mx1.example.com", opts(t, closeAfterBanner, nil), "connection closed by the server after EHLO", ErrProtocol},
	}
	for _, tc := range tests {
		r := Probe(context.Background(), tc.host, tc.opts)
		if !strings.HasPrefix(r.Reason, tc.reason) || !errors.Is(r.Err, tc.err) || r.Verified {
			t.Errorf("%s: reason %q, err %v; want %q, %v", tc.name, r.Reason, r.Err, tc.reason, tc.err)
		}
	}
	var re *ReplyError
	r := Probe(context.Background(), "mx1.example.com", opts(t, starttls454, nil))
	if !errors.As(r.Err, &re) || re.Command != "STARTTLS" || re.Code != 454 {
		t.Errorf("STARTTLS refused: error %#v", r.Err)
	}
}

func TestProbeAddresses(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "Moat Test CA")
	cert := issue(t, ca, jan1, dec31, "two.example.com")
	port := startSMTP(t, &tls.Config{Certificates: []tls.Certificate{cert}})

	// 127.0.0.2 refuses (nothing listens there), 127.0.0.1 answers.
	r := Probe(context.Background(), "two.example.com", opts(t, port, ca))
	if !r.Verified || r.Addr.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("second address: %q %v %v", r.Reason, r.Err, r.Addr)
	}

	o := opts(t, port, ca)
	o.AllowAddr = func(a netip.Addr) error {
		if a.IsLoopback() {
			return errors.New("loopback not allowed")
		}
		return nil
	}
	r = Probe(context.Background(), "mx1.example.com", o)
	if !errors.Is(r.Err, ErrConnect) || r.Reason != "address 127.0.0.1 refused: loopback not allowed" || r.Connected {
		t.Errorf("refused address: %q %v", r.Reason, r.Err)
	}

	// A cancelled context ends the probe at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = Probe(ctx, "mx1.example.com", opts(t, port, ca))
	if r.Err == nil || r.Verified {
		t.Errorf("cancelled: %+v", r)
	}
}
