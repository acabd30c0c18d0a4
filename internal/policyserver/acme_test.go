package policyserver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// startDNS runs a DNS server on 127.0.0.1 (UDP and TCP, same port) that
// answers A 127.0.0.1 for every name under .test and nothing else, for
// Pebble's validation authority.
func startDNS(t *testing.T) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA && strings.HasSuffix(strings.ToLower(qq.Name), ".test.") {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; ; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		_ = pc.Close()
		if i == 10 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			_ = srv.Shutdown()
			<-done
		})
	}
	return pc.LocalAddr().String()
}

type pebble struct {
	dirURL   string         // ACME directory
	rootFile string         // PEM of the TLS certificate of the ACME server
	roots    *x509.CertPool // Pebble's issuing root
	orders   atomic.Int64   // new-order requests received
}

// startPebble runs Pebble's ACME server in-process on 127.0.0.1, validating
// HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort of 127.0.0.1 (the names
// resolve through startDNS).
func startPebble(t *testing.T, httpPort, tlsPort int) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(&testWriter{w: t.Output()}, "pebble ", 0)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, startDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.test"}, false, false, 0, 0)
	p := &pebble{}
	inner := front.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			p.orders.Add(1)
		}
		inner.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.dirURL = srv.URL + wfe.DirectoryPath
	p.rootFile = filepath.Join(t.TempDir(), "acme-server.pem")
	if err := os.WriteFile(p.rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	p.roots = x509.NewCertPool()
	p.roots.AddCert(authority.GetRootCert(0).Cert)
	return p
}

func port(t *testing.T, ln net.Listener) int {
	t.Helper()
	return ln.Addr().(*net.TCPAddr).Port
}

// fetchPolicy GETs the policy of domain from addr with a client trusting
// roots, and returns the certificate the server presented.
func fetchPolicy(t *testing.T, addr, domain string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c := client(addr, roots)
	c.Timeout = 60 * time.Second
	resp, err := c.Get("https://mta-sts." + domain + PolicyPath)
	if err != nil {
		t.Fatalf("GET policy of %s: %v", domain, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != policyFor(domain) {
		t.Fatalf("GET policy of %s: %d %q", domain, resp.StatusCode, body)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname("mta-sts." + domain); err != nil {
		t.Fatalf("served certificate: %v", err)
	}
	return leaf
}

func acmeOptions(p *pebble) Options {
	return Options{
		ACMECA:     p.dirURL,
		ACMECARoot: p.rootFile,
		ACMEEmail:  "ops@example.test",
		// Issuance happens inside the first handshake.
		ReadHeaderTimeout: 60 * time.Second,
	}
}

func TestACMEHTTP01(t *testing.T) {
	httpsLn, httpLn := listen(t), listen(t)
	p := startPebble(t, port(t, httpLn), port(t, httpsLn))
	kv := newMemKV()
	holder := testHolder("example.test")
	opts := acmeOptions(p)
	opts.DisableTLSALPNChallenge = true
	srv, err := New(testLog(t, slog.LevelInfo), holder, kv, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, srv, httpsLn, httpLn)

	leaf := fetchPolicy(t, r.httpsAddr, "example.test", p.roots)
	if got := p.orders.Load(); got != 1 {
		t.Errorf("%d orders placed, want 1", got)
	}
	// Served again from the cache, without a new order.
	if again := fetchPolicy(t, r.httpsAddr, "example.test", p.roots); again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("second request got another certificate")
	}

	// A name that is not hosted gets no certificate, places no order and
	// costs no store access.
	reads := kv.reads.Load()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", r.httpsAddr,
		&tls.Config{ServerName: "mta-sts.not-hosted.test", RootCAs: p.roots})
	if err == nil {
		_ = conn.Close()
		t.Error("handshake for a name that is not hosted succeeded")
	}
	if got := p.orders.Load(); got != 1 {
		t.Errorf("%d orders after a non-hosted handshake, want 1", got)
	}
	if got := kv.reads.Load(); got != reads {
		t.Errorf("refusing a non-hosted handshake read the store %d times", got-reads)
	}
	// Neither does an HTTP-01 challenge request for a name that is not
	// hosted.
	if code, _, _ := get(t, client(r.httpAddr, nil), "GET", "http://mta-sts.not-hosted.test/.well-known/acme-challenge/abcdef"); code != 404 {
		t.Errorf("challenge request for a non-hosted name: %d, want 404", code)
	}
	if got := kv.reads.Load(); got != reads {
		t.Errorf("a non-hosted challenge request read the store %d times", got-reads)
	}

	// The certificate and key are in the KV...
	var certKey bool
	for _, k := range kv.keys() {
		if strings.HasPrefix(k, "certmagic/certificates/") && strings.HasSuffix(k, "/mta-sts.example.test.crt") {
			certKey = true
		}
	}
	if !certKey {
		t.Fatalf("no certificate in the KV: keys %q", kv.keys())
	}
	// ...so a second instance on the same KV serves it without ordering.
	srv2, err := New(testLog(t, slog.LevelInfo), holder, kv, opts)
	if err != nil {
		t.Fatal(err)
	}
	r2 := start(t, srv2, listen(t), listen(t))
	if other := fetchPolicy(t, r2.httpsAddr, "example.test", p.roots); other.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("second instance served another certificate")
	}
	if got := p.orders.Load(); got != 1 {
		t.Errorf("%d orders after the second instance served, want 1", got)
	}
}

func TestACMETLSALPN01(t *testing.T) {
	httpsLn := listen(t)
	// HTTP-01 would be validated on a port nobody listens on: only
	// TLS-ALPN-01 on the HTTPS listener can succeed.
	unused := listen(t)
	unusedPort := port(t, unused)
	_ = unused.Close()
	p := startPebble(t, unusedPort, port(t, httpsLn))
	kv := newMemKV()
	opts := acmeOptions(p)
	opts.DisableHTTPChallenge = true
	srv, err := New(testLog(t, slog.LevelInfo), testHolder("example.test"), kv, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, srv, httpsLn, nil)

	// An "acme-tls/1" handshake for a name that is not hosted is refused
	// before certmagic looks for challenge data in the store.
	reads := kv.reads.Load()
	conn, err := tls.Dial("tcp", r.httpsAddr, &tls.Config{ServerName: "mta-sts.not-hosted.test", NextProtos: []string{"acme-tls/1"}, InsecureSkipVerify: true})
	if err == nil {
		_ = conn.Close()
		t.Error("acme-tls/1 handshake for a name that is not hosted succeeded")
	}
	if got := kv.reads.Load(); got != reads {
		t.Errorf("refusing a non-hosted acme-tls/1 handshake read the store %d times", got-reads)
	}

	fetchPolicy(t, r.httpsAddr, "example.test", p.roots)
	if got := p.orders.Load(); got != 1 {
		t.Errorf("%d orders placed, want 1", got)
	}
	conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", r.httpsAddr,
		&tls.Config{ServerName: "mta-sts.not-hosted.test", RootCAs: p.roots})
	if err == nil {
		_ = conn.Close()
		t.Error("handshake for a name that is not hosted succeeded")
	}
	if got := p.orders.Load(); got != 1 {
		t.Errorf("%d orders after a non-hosted handshake, want 1", got)
	}
}
