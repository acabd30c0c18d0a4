package smtpprobe

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/moatmail/moat/internal/testpki"
)

// issue makes a server certificate for names valid from notBefore to
// notAfter; a nil ca makes it self-signed.
func issue(t *testing.T, ca *testpki.CA, notBefore, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	return *ca.Leaf(t, notBefore, notAfter, names...)
}

type backend struct{}

func (backend) NewSession(*smtp.Conn) (smtp.Session, error) { return session{}, nil }

type session struct{}

func (session) Reset()                               {}
func (session) Logout() error                        { return nil }
func (session) Mail(string, *smtp.MailOptions) error { return nil }
func (session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (session) Data(io.Reader) error                 { return nil }

// startSMTP starts a go-smtp server on 127.0.0.1 offering STARTTLS with
// cfg (none when nil) and returns its port.
func startSMTP(t *testing.T, cfg *tls.Config) int {
	t.Helper()
	s := smtp.NewServer(backend{})
	s.Domain = "mx.test"
	s.TLSConfig = cfg
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	s.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr).Port
}

// startScript starts a hand-written SMTP server on 127.0.0.1 that runs
// script on each connection, and returns its port. Connections are
// closed and the goroutines waited for when the test ends.
func startScript(t *testing.T, script func(c net.Conn, br *bufio.Reader)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				script(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// x509CreateIntermediate re-issues inter's certificate signed by root and
// returns its DER; inter's key stays the same.
func x509CreateIntermediate(root, inter *testpki.CA) ([]byte, error) {
	tmpl := *inter.Cert
	tmpl.SerialNumber = big.NewInt(2)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, root.Cert, &inter.Key.PublicKey, root.Key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	inter.Cert = c
	return der, nil
}
