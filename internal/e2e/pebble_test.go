package e2e

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log"
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

// pebbleCA is Pebble's ACME server running in-process on 127.0.0.1.
type pebbleCA struct {
	dirURL   string           // the ACME directory
	rootFile string           // PEM of the ACME server's own TLS certificate
	roots    *x509.CertPool   // the root that issues the certificates
	db       *db.MemoryStore  // what Pebble issued
	mu       sync.Mutex       // guards posts
	posts    map[string]int   // POST requests by URL path
	newOrder string           // path of the newOrder resource
	http     *httptest.Server // the ACME server
	handler  atomic.Pointer[http.Handler]
}

// newPebble starts the HTTPS server of an in-process Pebble on 127.0.0.1,
// so that its directory URL and TLS root are known before Moat starts;
// start then builds the CA behind it, once Moat's ports are known.
func newPebble(t *testing.T, logs *testLogs) *pebbleCA {
	t.Helper()
	p := &pebbleCA{db: db.NewMemoryStore(), posts: map[string]int{}}
	p.http = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := p.handler.Load()
		if h == nil {
			http.Error(w, "pebble not started yet", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodPost {
			p.mu.Lock()
			p.posts[r.URL.Path]++
			p.mu.Unlock()
		}
		(*h).ServeHTTP(w, r)
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

// start runs Pebble's CA behind the server of newPebble. Its validation
// authority resolves names through the DNS server at resolver (over TCP,
// as Pebble does) and validates HTTP-01 on port httpPort and TLS-ALPN-01 on
// port tlsPort of the address found. Pebble's environment is set with
// t.Setenv, so tests using it cannot run in parallel.
func (p *pebbleCA) start(t *testing.T, logs *testLogs, resolver string, httpPort, tlsPort int) {
	t.Helper()
	// No random sleep before validations, and no nonce rejected on
	// purpose: the test is about Moat, not about ACME client retries.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	lg := log.New(logs, "pebble ", log.Lmicroseconds)
	authority := ca.New(lg, p.db, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "the only profile"}})
	validator := va.New(lg, httpPort, tlsPort, false, resolver, p.db)
	front := wfe.New(lg, p.db, validator, authority, nil, false, false, 0, 0)
	h := front.Handler()
	p.handler.Store(&h)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(authority.GetRootCert(0).Cert)

	// Orders are counted by the path the directory names for them.
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
	p.newOrder = u.Path
}

// orders returns how many new-order requests Pebble received.
func (p *pebbleCA) orders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.posts[p.newOrder]
}

// issued reports whether Pebble issued cert.
func (p *pebbleCA) issued(cert *x509.Certificate) bool {
	return p.db.GetCertificateBySerial(cert.SerialNumber) != nil
}
