package testpki

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestLeaves(t *testing.T) {
	t.Parallel()
	ca := NewCA(t, "test root")
	now := time.Now()
	verify := func(c *x509.Certificate, name string, at time.Time, roots *x509.CertPool) error {
		_, err := c.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: at})
		return err
	}
	good := ca.Valid(t, "mx.example.test", "alt.example.test")
	if err := verify(good.Leaf, "alt.example.test", now, ca.Pool); err != nil {
		t.Errorf("valid leaf: %v", err)
	}
	if err := verify(good.Leaf, "other.example.test", now, ca.Pool); err == nil {
		t.Error("leaf verified for a name it does not carry")
	}
	old := ca.Leaf(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "mx.example.test")
	if err := verify(old.Leaf, "mx.example.test", now, ca.Pool); err == nil {
		t.Error("expired leaf verified")
	}
	var none *CA
	self := none.Valid(t, "mx.example.test")
	if err := verify(self.Leaf, "mx.example.test", now, ca.Pool); err == nil {
		t.Error("self-signed leaf verified against the CA")
	}
	if self.Leaf.Issuer.CommonName != "mx.example.test" {
		t.Errorf("self-signed issuer %q", self.Leaf.Issuer.CommonName)
	}
}
