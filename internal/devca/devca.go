// Package devca is a local certificate authority for development and tests:
// `moat serve --dev` serves the MTA-STS policy host (RFC 8461 §3.3) over
// HTTPS with leaf certificates it issues itself instead of obtaining them by
// ACME. Trust its root (dev-ca.pem) in the client to fetch policies.
//
// Certificates follow the RFC 5280 profile: an ECDSA P-256 self-signed root
// valid for about ten years, and short-lived ECDSA P-256 leaves whose only
// identity is one dNSName subjectAltName (RFC 8461 §3.3 matches DNS-IDs
// only). Never trust this CA outside a development machine.
package devca

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
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moatmail/moat/internal/dnsname"
)

// File names inside the directory given to LoadOrCreate.
const (
	RootFile = "dev-ca.pem"     // root certificate, PEM, mode 0644
	KeyFile  = "dev-ca-key.pem" // root private key, PKCS #8 PEM, mode 0600
)

const (
	rootValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is the lifetime of issued leaf certificates.
	LeafValidity = 30 * 24 * time.Hour
	// leafRenew: a cached leaf with less than this left is reissued.
	leafRenew = LeafValidity / 3
	// maxLeaves bounds the in-memory leaf cache.
	maxLeaves = 1024
	// backdate covers clock skew between the CA and its clients.
	backdate = time.Hour
)

// Sentinel errors.
var (
	// ErrFiles: the CA files are unreadable, inconsistent or expired. The
	// error names the file; fix or delete both files to start afresh.
	ErrFiles = errors.New("devca: unusable CA files")
	// ErrName: the requested name is not a valid DNS host name, or the
	// client sent no server name (SNI). Nothing to fix on the server.
	ErrName = errors.New("devca: invalid server name")
	// ErrNotAllowed: the allow hook refused the name. The client asked for
	// a host that is not served.
	ErrNotAllowed = errors.New("devca: name not allowed")
)

// CA issues leaf certificates signed by a local root. It is safe for
// concurrent use.
type CA struct {
	root    *x509.Certificate
	key     *ecdsa.PrivateKey
	rootPEM []byte

	mu     sync.Mutex
	leaves map[string]*tls.Certificate // by name; at most maxLeaves
}

// LoadOrCreate reads the root certificate and key from dir (RootFile and
// KeyFile), or, when neither exists, creates a new root and writes both
// files, creating dir (mode 0700) if needed. When only one of the files
// exists, or they do not match, it returns ErrFiles rather than overwrite
// anything.
func LoadOrCreate(dir string) (*CA, error) {
	certPath := filepath.Join(dir, RootFile)
	keyPath := filepath.Join(dir, KeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return load(certPath, certPEM, keyPath, keyPEM)
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return create(dir, certPath, keyPath)
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s: %w", ErrFiles, certPath, certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s: %w", ErrFiles, keyPath, keyErr)
	case certErr != nil:
		return nil, fmt.Errorf("%w: %s is missing but %s exists", ErrFiles, certPath, keyPath)
	default:
		return nil, fmt.Errorf("%w: %s is missing but %s exists", ErrFiles, keyPath, certPath)
	}
}

func load(certPath string, certPEM []byte, keyPath string, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s: no CERTIFICATE PEM block", ErrFiles, certPath)
	}
	root, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFiles, certPath, err)
	}
	if !root.IsCA {
		return nil, fmt.Errorf("%w: %s: certificate is not a CA", ErrFiles, certPath)
	}
	if now := time.Now(); now.After(root.NotAfter) {
		return nil, fmt.Errorf("%w: %s: root expired on %s", ErrFiles, certPath, root.NotAfter.UTC().Format(time.RFC3339))
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s: no PRIVATE KEY PEM block", ErrFiles, keyPath)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFiles, keyPath, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: key is %T, want ECDSA", ErrFiles, keyPath, parsed)
	}
	if !key.PublicKey.Equal(root.PublicKey) {
		return nil, fmt.Errorf("%w: %s does not match the certificate in %s", ErrFiles, keyPath, certPath)
	}
	return newCA(root, key, pem.EncodeToMemory(cb)), nil
}

func create(dir, certPath, keyPath string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devca: generate root key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Moat development CA (do not trust in production)"},
			CommonName:   "Moat development root " + serial.Text(16)[:8],
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(rootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("devca: create root certificate: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devca: parse new root certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devca: encode root key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devca: create directory %s: %w", dir, err)
	}
	// The key first: a crash between the writes leaves a key without a
	// certificate, which LoadOrCreate reports instead of silently replacing.
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeNew(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return newCA(root, key, certPEM), nil
}

// writeNew creates path exclusively (never replacing a file another
// process wrote meanwhile) with mode perm.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("devca: create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("devca: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("devca: close %s: %w", path, err)
	}
	return nil
}

func newCA(root *x509.Certificate, key *ecdsa.PrivateKey, rootPEM []byte) *CA {
	return &CA{root: root, key: key, rootPEM: rootPEM, leaves: make(map[string]*tls.Certificate)}
}

func randomSerial() (*big.Int, error) {
	// RFC 5280 §4.1.2.2: positive, at most 20 octets.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("devca: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// RootPEM returns the root certificate in PEM form (the content of
// RootFile). The caller must not modify it.
func (c *CA) RootPEM() []byte { return c.rootPEM }

// Root returns the parsed root certificate. The caller must not modify it.
func (c *CA) Root() *x509.Certificate { return c.root }

// Pool returns a new certificate pool holding only the root.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.root)
	return p
}

// Certificate returns a leaf certificate for name, issuing one when none is
// cached or the cached one is close to expiry. name must be a DNS host name
// (letters, digits, hyphens, dots); it is lower-cased and one trailing dot
// removed. ErrName otherwise.
func (c *CA) Certificate(name string) (*tls.Certificate, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if err := checkName(name); err != nil {
		return nil, err
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if leaf, ok := c.leaves[name]; ok && leaf.Leaf.NotAfter.Sub(now) > leafRenew {
		return leaf, nil
	}
	leaf, err := c.issue(name, now)
	if err != nil {
		return nil, err
	}
	if _, ok := c.leaves[name]; !ok && len(c.leaves) >= maxLeaves {
		for k := range c.leaves { // evict an arbitrary entry
			delete(c.leaves, k)
			break
		}
	}
	c.leaves[name] = leaf
	return leaf, nil
}

func (c *CA) issue(name string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devca: generate key for %s: %w", name, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		// RFC 8461 §3.3: matching is performed only against DNS-IDs.
		DNSNames:              []string{name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(LeafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root, &key.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("devca: sign certificate for %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devca: parse certificate for %s: %w", name, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// checkName accepts lower-case host names in A-label form (dnsname.LDH:
// letters, digits and hyphens, any number of labels, so "localhost" too)
// that are not IP addresses.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name (no SNI)", ErrName)
	}
	if err := dnsname.Check(name, dnsname.LDH); err != nil {
		return fmt.Errorf("%w: %w", ErrName, err)
	}
	if strings.ToLower(name) != name {
		return fmt.Errorf("%w: %q is not lower-case", ErrName, name)
	}
	// RFC 6066 §3: literal IP addresses are not permitted in SNI.
	if net.ParseIP(name) != nil {
		return fmt.Errorf("%w: %q is an IP address", ErrName, name)
	}
	return nil
}

// GetCertificate is a tls.Config.GetCertificate callback issuing a leaf
// for whatever name the client asks for (SNI). Servers that must limit the
// names use GetCertificateFunc.
func (c *CA) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.Certificate(hello.ServerName)
}

// GetCertificateFunc returns a tls.Config.GetCertificate callback that
// issues a leaf only for names allow accepts (called with the lower-cased
// name, without trailing dot); other names fail the handshake with
// ErrNotAllowed. A nil allow accepts every name.
func (c *CA) GetCertificateFunc(allow func(name string) bool) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
		if allow != nil && !allow(name) {
			return nil, fmt.Errorf("%w: %q", ErrNotAllowed, name)
		}
		return c.Certificate(name)
	}
}
