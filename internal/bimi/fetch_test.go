package bimi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Moat Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// mapResolver resolves names from a map; other names do not exist.
type mapResolver map[string]string

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := m[host]
	if !ok {
		return nil, fmt.Errorf("no such host %s", host)
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

func allowAll(netip.Addr) error { return nil }

// startTLS starts an HTTPS server on 127.0.0.1 with a certificate for
// names and returns its port.
func startTLS(t *testing.T, ca *testCA, h http.Handler, names ...string) int {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, names...)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

const goodSVG = `<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps" viewBox="0 0 1 1"><title>t</title></svg>`

func TestFetch(t *testing.T) {
	ca := newTestCA(t)
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/logo.svg", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
		w.Write([]byte(goodSVG))
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello"))
	})
	mux.HandleFunc("/to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://logo.example/logo.svg", http.StatusFound)
	})
	mux.HandleFunc("/hop/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
		if n == 0 {
			http.Redirect(w, r, "/logo.svg", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to-evil", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://evil.example/logo.svg", http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(70<<10))
		w.Write(make([]byte, 70<<10))
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 70; i++ {
			w.Write(make([]byte, 1<<10))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	port := startTLS(t, ca, mux, "logo.example", "evil.example")
	res := mapResolver{"logo.example": "127.0.0.1", "evil.example": "127.0.0.2"}
	opts := FetchOpts{Resolver: res, RootCAs: ca.pool, AllowAddr: allowAll, Port: port}
	ctx := context.Background()

	f, err := Fetch(ctx, "https://logo.example/logo.svg", opts)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Body) != goodSVG || f.ContentType != "image/svg+xml" || f.URL != "https://logo.example/logo.svg" || len(f.Certs) != 1 || f.Certs[0].Subject.CommonName != "logo.example" {
		t.Errorf("got %+v", f)
	}
	if p := CheckSVG(f.Body); len(p) != 0 {
		t.Errorf("fetched SVG: %+v", p)
	}
	f, err = Fetch(ctx, "https://logo.example/plain", opts)
	if err != nil || f.ContentType != "text/plain" {
		t.Errorf("plain: %+v, %v", f, err)
	}

	// Three redirects are followed, the fourth is not.
	f, err = Fetch(ctx, "https://logo.example/hop/2", opts)
	if err != nil || f.URL != "https://logo.example/logo.svg" {
		t.Errorf("3 redirects: %+v, %v", f, err)
	}
	if _, err := Fetch(ctx, "https://logo.example/hop/3", opts); err == nil || !strings.Contains(err.Error(), "more than 3 redirects") {
		t.Errorf("4 redirects: got %v", err)
	}

	errTests := []struct {
		name, url string
		opts      FetchOpts
		reason    string
		is        error
	}{
		{"redirect to http", "https://logo.example/to-http", opts, "not https", ErrFetch},
		{"http URL", "http://logo.example/logo.svg", opts, "only https", ErrFetch},
		{"too large", "https://logo.example/big", opts, "Content-Length 71680 is over the 65536 byte limit", ErrFetch},
		{"too large chunked", "https://logo.example/big-chunked", opts, "body is over the 65536 byte limit", ErrFetch},
		{"small limit", "https://logo.example/logo.svg", FetchOpts{Resolver: res, RootCAs: ca.pool, AllowAddr: allowAll, Port: port, MaxSize: 10}, "over the 10 byte limit", ErrFetch},
		{"not found", "https://logo.example/missing.svg", opts, "HTTP status 404", ErrFetch},
		{"unknown host", "https://nowhere.example/logo.svg", opts, "no such host", ErrFetch},
		{"untrusted", "https://logo.example/logo.svg", FetchOpts{Resolver: res, AllowAddr: allowAll, Port: port}, "certificate not valid", ErrFetch},
		{"wrong name", "https://other.example/logo.svg", FetchOpts{Resolver: mapResolver{"other.example": "127.0.0.1"}, RootCAs: ca.pool, AllowAddr: allowAll, Port: port}, "other.example", ErrFetch},
		{"timeout", "https://logo.example/slow", FetchOpts{Resolver: res, RootCAs: ca.pool, AllowAddr: allowAll, Port: port, Timeout: 300 * time.Millisecond}, "timeout after 300ms", ErrFetch},
		// The default guard refuses loopback.
		{"loopback refused", "https://logo.example/logo.svg", FetchOpts{Resolver: res, RootCAs: ca.pool, Port: port}, "127.0.0.1 is loopback", ErrAddressRefused},
		{"IP literal refused", "https://127.0.0.1/logo.svg", FetchOpts{RootCAs: ca.pool, Port: port}, "loopback", ErrAddressRefused},
		// A redirect is checked again: evil.example resolves to a
		// refused address.
		{"redirect refused", "https://logo.example/to-evil", FetchOpts{Resolver: res, RootCAs: ca.pool, Port: port, AllowAddr: func(a netip.Addr) error {
			if a == netip.MustParseAddr("127.0.0.2") {
				return errors.New("not for you")
			}
			return nil
		}}, "127.0.0.2: not for you", ErrAddressRefused},
	}
	for _, tc := range errTests {
		before := hits.Load()
		f, err := Fetch(ctx, tc.url, tc.opts)
		var fe *FetchError
		if !errors.As(err, &fe) || !errors.Is(err, tc.is) {
			t.Errorf("%s: got %+v, %v", tc.name, f, err)
			continue
		}
		if !strings.Contains(fe.Reason, tc.reason) {
			t.Errorf("%s: reason %q, want %q", tc.name, fe.Reason, tc.reason)
		}
		if tc.is == ErrAddressRefused && hits.Load() != before {
			t.Errorf("%s: the server was reached", tc.name)
		}
	}
}
