package devca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveTLS runs a TLS echo-less server on 127.0.0.1 whose certificates come
// from getCert; each accepted connection completes the handshake, writes
// "ok" and closes.
func serveTLS(t *testing.T, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: getCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_, _ = io.WriteString(c, "ok")
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func dial(addr, name string, roots *x509.CertPool) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS12})
}

func readRootPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, RootFile))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", RootFile)
	}
	return p
}

func TestHandshakeTrustingRootFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	allow := func(name string) bool { return name == "mta-sts.example.test" }
	addr := serveTLS(t, ca.GetCertificateFunc(allow))
	roots := readRootPool(t, dir)

	c, err := dial(addr, "MTA-STS.Example.TEST", roots)
	if err != nil {
		t.Fatalf("handshake for allowed name: %v", err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ok" {
		t.Fatalf("read %q, %v", got, err)
	}
	leaf := c.ConnectionState().PeerCertificates[0]
	_ = c.Close()
	if want := []string{"mta-sts.example.test"}; len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != want[0] {
		t.Errorf("DNSNames = %q, want %q", leaf.DNSNames, want)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("leaf key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > LeafValidity+2*time.Hour || life < LeafValidity {
		t.Errorf("leaf lifetime %s, want about %s", life, LeafValidity)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}

	for _, name := range []string{"mta-sts.other.test", "example.test", ""} {
		c, err := dial(addr, name, roots)
		if err == nil {
			_ = c.Close()
			t.Errorf("handshake for %q succeeded, want failure", name)
		}
	}
}

func TestReopenReusesRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca1, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca1.RootPEM(), ca2.RootPEM()) {
		t.Fatal("reopened CA has a different root")
	}
	// A leaf from the reopened CA verifies against the first CA's pool.
	leaf, err := ca2.Certificate("mta-sts.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "mta-sts.example.test", Roots: ca1.Pool()}); err != nil {
		t.Fatalf("verify against first root: %v", err)
	}
	for file, want := range map[string]os.FileMode{RootFile: 0o644, KeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %o, want %o", file, fi.Mode().Perm(), want)
		}
	}
	root := ca1.Root()
	if !root.IsCA || root.NotAfter.Sub(root.NotBefore) < 9*365*24*time.Hour {
		t.Errorf("root IsCA=%v lifetime %s", root.IsCA, root.NotAfter.Sub(root.NotBefore))
	}
	if pub, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root key is %T, want ECDSA P-256", root.PublicKey)
	}
}

func TestLoadOrCreateBadFiles(t *testing.T) {
	t.Parallel()
	good := t.TempDir()
	if _, err := LoadOrCreate(good); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if _, err := LoadOrCreate(other); err != nil {
		t.Fatal(err)
	}
	read := func(dir, file string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name      string
		cert, key []byte // nil: file absent
		wantIn    string
	}{
		{"key only", nil, read(good, KeyFile), RootFile + " is missing"},
		{"cert only", read(good, RootFile), nil, KeyFile + " is missing"},
		{"mismatched key", read(good, RootFile), read(other, KeyFile), "does not match"},
		{"garbage cert", []byte("hello"), read(good, KeyFile), "no CERTIFICATE PEM block"},
		{"garbage key", read(good, RootFile), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), KeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.cert != nil {
				if err := os.WriteFile(filepath.Join(dir, RootFile), tt.cert, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.key != nil {
				if err := os.WriteFile(filepath.Join(dir, KeyFile), tt.key, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadOrCreate(dir)
			if !errors.Is(err, ErrFiles) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("err = %v, want ErrFiles mentioning %q", err, tt.wantIn)
			}
			// Nothing was overwritten.
			if tt.cert != nil && !bytes.Equal(read(dir, RootFile), tt.cert) {
				t.Error("root file changed")
			}
		})
	}
}

func TestCertificateCache(t *testing.T) {
	t.Parallel()
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ca.Certificate("mta-sts.example.test.")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ca.Certificate("MTA-STS.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("second request for the same name issued a new certificate")
	}
	c, err := ca.Certificate("mta-sts.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Error("different names share a certificate")
	}
	for i := 0; i < maxLeaves+10; i++ {
		if _, err := ca.Certificate("h" + strconv.Itoa(i) + ".test"); err != nil {
			t.Fatal(err)
		}
	}
	ca.mu.Lock()
	n := len(ca.leaves)
	ca.mu.Unlock()
	if n > maxLeaves {
		t.Errorf("cache holds %d leaves, bound is %d", n, maxLeaves)
	}
}

func TestCertificateRejectsBadNames(t *testing.T) {
	t.Parallel()
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "a..b", ".a", "a b", "a_b.test", "*.example.test", "ex\x00.test",
		strings.Repeat("a", 64) + ".test", strings.Repeat("abcdefgh.", 30) + "test", "127.0.0.1:443"} {
		if _, err := ca.Certificate(name); !errors.Is(err, ErrName) {
			t.Errorf("Certificate(%q) err = %v, want ErrName", name, err)
		}
	}
	if _, err := ca.GetCertificateFunc(func(string) bool { return false })(&tls.ClientHelloInfo{ServerName: "x.test"}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("refused name: err = %v, want ErrNotAllowed", err)
	}
	if _, err := ca.GetCertificate(&tls.ClientHelloInfo{ServerName: "any.test"}); err != nil {
		t.Errorf("GetCertificate(any.test): %v", err)
	}
}

func TestRootPEMMatchesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(ca.RootPEM())
	if b == nil || b.Type != "CERTIFICATE" || !bytes.Equal(b.Bytes, ca.Root().Raw) {
		t.Fatal("RootPEM does not hold the root certificate")
	}
}

// FuzzCertificateName feeds arbitrary SNI values: accepted names must be
// valid host names, and the issued leaf must verify for exactly that name.
func FuzzCertificateName(f *testing.F) {
	for _, s := range []string{"mta-sts.example.com", "MTA-STS.EXAMPLE.COM.", "", ".", "a..b", "xn--bcher-kva.example", "*.example.com", "a.b.c.d.e"} {
		f.Add(s)
	}
	ca, err := LoadOrCreate(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	roots := ca.Pool()
	f.Fuzz(func(t *testing.T, name string) {
		cert, err := ca.Certificate(name)
		if err != nil {
			if !errors.Is(err, ErrName) {
				t.Fatalf("Certificate(%q): unexpected error %v", name, err)
			}
			return
		}
		norm := strings.ToLower(strings.TrimSuffix(name, "."))
		if len(norm) > 253 || strings.Contains(norm, "..") {
			t.Fatalf("accepted invalid name %q", name)
		}
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: norm, Roots: roots}); err != nil {
			t.Fatalf("leaf for %q does not verify: %v", name, err)
		}
	})
}
