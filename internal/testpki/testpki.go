// Package testpki makes throwaway certificate authorities and server
// certificates for tests: valid ones, expired ones, ones for the wrong
// name, self-signed ones. Keys are ECDSA P-256. It is imported only by
// tests and test harnesses.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// CA is a certificate authority made for one test.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	Pool *x509.CertPool // trusts Cert only
}

// NewCA makes a root valid from 2000 to 2100, so that tests with fixed
// clocks anywhere in between can use it.
func NewCA(t TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
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
	return &CA{Cert: cert, Key: key, Pool: pool}
}

// Sign signs tmpl with a fresh key, completing it with a random serial
// number and server-authentication key usage. A nil ca makes the
// certificate self-signed. The chain holds the leaf only.
func (ca *CA) Sign(t TB, tmpl *x509.Certificate) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.Cert, ca.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// Leaf issues a server certificate for names (the first is also the
// common name) valid from notBefore to notAfter. A nil ca self-signs it.
func (ca *CA) Leaf(t TB, notBefore, notAfter time.Time, names ...string) *tls.Certificate {
	t.Helper()
	return ca.Sign(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: names[0]},
		DNSNames:  names,
		NotBefore: notBefore,
		NotAfter:  notAfter,
	})
}

// Valid issues a certificate for names valid from an hour ago for a day.
func (ca *CA) Valid(t TB, names ...string) *tls.Certificate {
	t.Helper()
	return ca.Leaf(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), names...)
}
