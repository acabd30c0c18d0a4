// Package fakenet runs a small internet inside a test process, for the
// domain checker's tests: a DNS server with zones (package dnstest), HTTPS
// servers (policy hosts, logo hosts) and SMTP servers (with and without
// STARTTLS, with good and bad certificates), all under a test CA.
//
// Every host has its own loopback address (127.0.0.0/8 is all loopback on
// Linux), so that hosts that must behave differently can share one port
// per role: the checker connects to one SMTP port on every MX host and one
// HTTPS port on every web host, as on the internet. Tests write the
// addresses into their zone text.
package fakenet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/dnstest"
)

// Cert describes a host's certificate. The zero value is a certificate for
// the host's names, valid from an hour ago for 90 days, issued by the test
// CA.
type Cert struct {
	// Names are the DNS names in the certificate. Default: the host's
	// names.
	Names []string
	// NotBefore and NotAfter default to an hour ago and 90 days from now.
	NotBefore, NotAfter time.Time
	// SelfSigned makes the certificate sign itself instead of being
	// issued by the test CA.
	SelfSigned bool
}

// SMTPHost is an SMTP server on its own loopback address.
type SMTPHost struct {
	Addr     string // loopback address, e.g. "127.0.83.10"
	Hostname string // name in the greeting and the default certificate name
	// NoSTARTTLS: the server does not offer STARTTLS.
	NoSTARTTLS bool
	Cert       Cert
	// MaxTLSVersion limits TLS (tls.VersionTLS11 for an outdated server).
	// Zero: Go's default.
	MaxTLSVersion uint16
	// Silent: the server accepts connections and never says anything (a
	// black hole that makes clients time out).
	Silent bool
}

// HTTPSHost is an HTTPS server on its own loopback address.
type HTTPSHost struct {
	Addr    string   // loopback address
	Names   []string // host names it serves, the default certificate names
	Cert    Cert
	Handler http.Handler
}

// Spec is the fake internet to start.
type Spec struct {
	// Zone is the zone-file text the DNS server answers from.
	Zone  string
	SMTP  []SMTPHost
	HTTPS []HTTPSHost
	// Signed are zones whose answers carry the AD bit at DNSAddr, as a
	// validating resolver sets it for DNSSEC-signed zones.
	Signed []string
	// Forward sends names at or under each zone to another DNS server
	// (dnstest's forwarding); a dead address makes them fail (SERVFAIL).
	Forward map[string]string
}

// Net is a running fake internet. It stops when the test ends.
type Net struct {
	DNS *dnstest.Server
	// DNSAddr is where raw queries (DNSSEC AD bit, DANE TLSA) go: a front
	// to DNS that sets the AD bit for Spec.Signed zones; DNS.Addr when
	// there are none.
	DNSAddr string
	// CA is the test root; RootCAs trusts it and CAFile holds it as PEM.
	CA      *CA
	RootCAs *x509.CertPool
	CAFile  string
	// SMTPPort and HTTPSPort are the ports every SMTP and HTTPS host
	// listens on (each on its own address).
	SMTPPort, HTTPSPort int
}

// Start starts the fake internet of spec. It skips the test where only
// 127.0.0.1 is a loopback address (not Linux).
func Start(t testing.TB, spec Spec) *Net {
	t.Helper()
	if runtime.GOOS != "linux" && (len(spec.SMTP) > 0 || len(spec.HTTPS) > 0) {
		t.Skip("fakenet needs the whole 127.0.0.0/8 loopback range, which only Linux provides by default")
	}
	ca, err := NewCA()
	if err != nil {
		t.Fatalf("fakenet: %v", err)
	}
	n := &Net{CA: ca, RootCAs: ca.Pool()}
	n.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(n.CAFile, ca.PEM(), 0o600); err != nil {
		t.Fatalf("fakenet: %v", err)
	}
	n.DNS = dnstest.Start(t, spec.Zone, spec.Forward)
	n.DNSAddr = n.DNS.Addr
	if len(spec.Signed) > 0 {
		n.DNSAddr = startValidator(t, n.DNS.Addr, spec.Signed)
	}

	var smtpAddrs, httpsAddrs []string
	for _, h := range spec.SMTP {
		smtpAddrs = append(smtpAddrs, h.Addr)
	}
	for _, h := range spec.HTTPS {
		httpsAddrs = append(httpsAddrs, h.Addr)
	}
	smtpLs, port := listenAll(t, smtpAddrs)
	n.SMTPPort = port
	httpsLs, port := listenAll(t, httpsAddrs)
	n.HTTPSPort = port

	for i, h := range spec.SMTP {
		n.serveSMTP(t, h, smtpLs[i])
	}
	for i, h := range spec.HTTPS {
		n.serveHTTPS(t, h, httpsLs[i])
	}
	return n
}

// listenAll opens a TCP listener on every address, all on one port.
func listenAll(t testing.TB, addrs []string) ([]net.Listener, int) {
	t.Helper()
	if len(addrs) == 0 {
		return nil, 0
	}
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		first, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			t.Fatalf("fakenet: listen on %s: %v", addrs[0], err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{first}
		for _, a := range addrs[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				lastErr = err
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == len(addrs) {
			t.Cleanup(func() {
				for _, l := range ls {
					l.Close()
				}
			})
			return ls, port
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatalf("fakenet: no port free on all of %v: %v", addrs, lastErr)
	return nil, 0
}

func (n *Net) certificate(t testing.TB, c Cert, names []string) tls.Certificate {
	t.Helper()
	if c.Names == nil {
		c.Names = names
	}
	cert, err := n.CA.Issue(c)
	if err != nil {
		t.Fatalf("fakenet: %v", err)
	}
	return cert
}

func (n *Net) serveSMTP(t testing.TB, h SMTPHost, l net.Listener) {
	t.Helper()
	if h.Silent {
		serveSilent(t, l)
		return
	}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return refuse{}, nil }))
	s.Domain = h.Hostname
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0)
	if !h.NoSTARTTLS {
		cert := n.certificate(t, h.Cert, []string{h.Hostname})
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: h.MaxTLSVersion}
		if h.MaxTLSVersion != 0 && h.MaxTLSVersion < tls.VersionTLS12 {
			s.TLSConfig.MinVersion = tls.VersionTLS10
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
}

func (n *Net) serveHTTPS(t testing.TB, h HTTPSHost, l net.Listener) {
	t.Helper()
	cert := n.certificate(t, h.Cert, h.Names)
	handler := h.Handler
	if handler == nil {
		handler = http.NotFoundHandler()
	}
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(l, srv.TLSConfig))
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
}

// serveSilent accepts connections and holds them open, unanswered, until
// the test ends.
func serveSilent(t testing.TB, l net.Listener) {
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
}

// refuse is an SMTP session that accepts no mail: the checker never sends
// any.
type refuse struct{}

var errNoMail = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "test server accepts no mail"}

func (refuse) Reset()                               { /* nothing to reset */ }
func (refuse) Logout() error                        { return nil }
func (refuse) Mail(string, *smtp.MailOptions) error { return errNoMail }
func (refuse) Rcpt(string, *smtp.RcptOptions) error { return errNoMail }
func (refuse) Data(io.Reader) error                 { return errNoMail }

// CA is a test certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA creates a CA with a fresh ECDSA P-256 root.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fakenet test root"},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Pool returns a new pool trusting the root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// PEM returns the root certificate in PEM form.
func (ca *CA) PEM() []byte { return ca.pem }

// Issue issues a leaf certificate as c describes.
func (ca *CA) Issue(c Cert) (tls.Certificate, error) {
	if len(c.Names) == 0 {
		return tls.Certificate{}, errors.New("fakenet: certificate without names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("leaf key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serial: %w", err)
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = time.Now().Add(-time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: c.Names[0]},
		DNSNames:     c.Names,
		NotBefore:    c.NotBefore,
		NotAfter:     c.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, signer := ca.cert, ca.key
	if c.SelfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("leaf certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("leaf certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// startValidator starts a DNS server that forwards every query to
// upstream and sets the AD bit on NOERROR answers for names at or under
// the signed zones, as a validating resolver does for DNSSEC-signed data.
// It returns its address.
func startValidator(t testing.TB, upstream string, signed []string) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		c := &dns.Client{Timeout: 5 * time.Second}
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			c.Net = "tcp"
		}
		in, _, err := c.Exchange(req, upstream)
		if err != nil {
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
			return
		}
		in.AuthenticatedData = false
		if len(req.Question) == 1 && in.Rcode == dns.RcodeSuccess {
			for _, z := range signed {
				if dns.IsSubDomain(dns.Fqdn(z), dns.CanonicalName(req.Question[0].Name)) {
					in.AuthenticatedData = true
				}
			}
		}
		_ = w.WriteMsg(in)
	})
	pc, l := dnstest.Listen(t)
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: l, Handler: handler}
	var started sync.WaitGroup
	started.Add(2)
	udp.NotifyStartedFunc = started.Done
	tcp.NotifyStartedFunc = started.Done
	var wg sync.WaitGroup
	wg.Go(func() { _ = udp.ActivateAndServe() })
	wg.Go(func() { _ = tcp.ActivateAndServe() })
	started.Wait()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
		wg.Wait()
	})
	return pc.LocalAddr().String()
}
