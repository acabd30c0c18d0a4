//go:build linux

package cluster

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// acmeCA is Pebble's ACME server in the test process, on 127.0.0.1, with
// its requests counted and a switch that makes it answer 500 to
// everything (an ACME outage).
type acmeCA struct {
	dirURL   string         // the ACME directory
	rootFile string         // PEM of the ACME server's own TLS certificate
	roots    *x509.CertPool // the root of the certificates it issues
	db       *db.MemoryStore
	http     *httptest.Server
	handler  atomic.Pointer[http.Handler]
	failing  atomic.Bool // answer 500 to every request

	mu       sync.Mutex
	posts    map[string]int // POST requests by URL path
	requests int            // every request, refused ones included
	newOrder string         // path of the newOrder resource
}

// newACME starts the HTTPS server of Pebble, so that its directory URL is
// known before the instances start; start builds the CA behind it once
// the port it validates on is known.
func newACME(t *testing.T, logs io.Writer) *acmeCA {
	t.Helper()
	p := &acmeCA{db: db.NewMemoryStore(), posts: map[string]int{}}
	p.http = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests++
		if r.Method == http.MethodPost && !p.failing.Load() {
			p.posts[r.URL.Path]++
		}
		p.mu.Unlock()
		h := p.handler.Load()
		switch {
		case p.failing.Load():
			http.Error(w, "the ACME server is down (test)", http.StatusInternalServerError)
		case h == nil:
			http.Error(w, "pebble not started yet", http.StatusServiceUnavailable)
		default:
			(*h).ServeHTTP(w, r)
		}
	}))
	p.http.Config.ErrorLog = log.New(logs, "pebble ", log.Lmicroseconds)
	p.http.StartTLS()
	t.Cleanup(p.http.Close)
	p.dirURL = p.http.URL + wfe.DirectoryPath
	p.rootFile = filepath.Join(t.TempDir(), "pebble-server.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.http.Certificate().Raw})
	if err := os.WriteFile(p.rootFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs Pebble's CA. Its validation authority resolves names through
// the DNS server at resolver (over TCP) and validates HTTP-01 on httpPort
// and TLS-ALPN-01 on tlsPort of the address found: one instance's ports.
// The instances share their challenges through the store, so any of them
// may be the one that orders.
func (p *acmeCA) start(t *testing.T, logs io.Writer, resolver string, httpPort, tlsPort int) {
	t.Helper()
	lg := log.New(logs, "pebble ", log.Lmicroseconds)
	authority := ca.New(lg, p.db, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "the only profile"}})
	validator := va.New(lg, httpPort, tlsPort, false, resolver, p.db)
	front := wfe.New(lg, p.db, validator, authority, nil, false, false, 0, 0)
	h := front.Handler()
	p.handler.Store(&h)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(authority.GetRootCert(0).Cert)

	resp, err := p.http.Client().Get(p.dirURL)
	if err != nil {
		t.Fatalf("pebble directory: %v", err)
	}
	defer resp.Body.Close()
	var dir struct {
		NewOrder string `json:"newOrder"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		t.Fatalf("pebble directory: %v", err)
	}
	u, err := url.Parse(dir.NewOrder)
	if err != nil || u.Path == "" {
		t.Fatalf("pebble directory: newOrder %q: %v", dir.NewOrder, err)
	}
	p.mu.Lock()
	p.newOrder = u.Path
	p.mu.Unlock()
}

// orders returns how many new-order requests Pebble answered.
func (p *acmeCA) orders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.posts[p.newOrder]
}

// requestCount returns how many requests reached the server, refused
// ones included.
func (p *acmeCA) requestCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// issued reports whether Pebble issued the certificate with serial.
func (p *acmeCA) issued(serial *big.Int) bool {
	return p.db.GetCertificateBySerial(serial) != nil
}
