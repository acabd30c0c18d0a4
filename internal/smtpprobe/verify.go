package smtpprobe

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// verification is the outcome of verify.
type verification struct {
	ok        bool
	reason    string
	errs      []error // the crypto/x509 errors behind reason
	expiresIn time.Duration
}

// CertError is a certificate that did not verify. It wraps ErrCertificate
// and the crypto/x509 error behind each problem: x509.UnknownAuthorityError
// (also for "self-signed") or another chain error, x509.HostnameError, and
// x509.CertificateInvalidError with Reason x509.Expired for the leaf's
// dates, so that callers can use errors.As.
type CertError struct {
	Reason string // as Result.Reason
	Errs   []error
}

func (e *CertError) Error() string { return "smtpprobe: certificate not valid: " + e.Reason }

// Unwrap returns ErrCertificate and the x509 errors.
func (e *CertError) Unwrap() []error { return append([]error{ErrCertificate}, e.Errs...) }

// verify checks a presented chain the way a validating sender would, but
// checks trust, name and dates separately so that each failure is named:
//   - trust: the chain must lead to a root of roots (nil: the system's),
//     judged at a moment inside the leaf's validity so that an expired
//     leaf does not hide an untrusted one;
//   - name: the leaf must be valid for the MX host name (RFC 7817 §3,
//     RFC 6125 §6.4: DNS-ID, wildcard only as the whole left-most label);
//   - dates: now must be within the leaf's validity.
func verify(host string, chain []*x509.Certificate, roots *x509.CertPool, now time.Time) verification {
	if len(chain) == 0 {
		return verification{reason: "server sent no certificate"}
	}
	leaf := chain[0]
	v := verification{expiresIn: leaf.NotAfter.Sub(now)}
	var reasons []string
	if r, err := trust(chain, roots, now); r != "" {
		reasons = append(reasons, r)
		v.errs = append(v.errs, err)
	}
	if err := leaf.VerifyHostname(host); err != nil {
		reasons = append(reasons, nameReason(leaf, host))
		v.errs = append(v.errs, err)
	}
	var dates string
	switch {
	case now.After(leaf.NotAfter):
		dates = fmt.Sprintf("expired on %s (%s ago)", day(leaf.NotAfter), days(now.Sub(leaf.NotAfter)))
	case now.Before(leaf.NotBefore):
		dates = fmt.Sprintf("not valid before %s (in %s)", day(leaf.NotBefore), days(leaf.NotBefore.Sub(now)))
	}
	if dates != "" {
		reasons = append(reasons, dates)
		v.errs = append(v.errs, x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired, Detail: dates})
	}
	v.ok = len(reasons) == 0
	v.reason = strings.Join(reasons, "; ")
	return v
}

// trust returns why the chain does not lead to a trusted root and the
// x509 error, or "" and nil.
func trust(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) (string, error) {
	leaf := chain[0]
	at := now
	if at.After(leaf.NotAfter) {
		at = leaf.NotAfter
	}
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err == nil {
		return "", nil
	}
	return chainReason(chain, err), err
}

// chainReason describes an error of x509.Certificate.Verify.
func chainReason(chain []*x509.Certificate, err error) string {
	leaf := chain[0]
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var sr x509.SystemRootsError
	switch {
	case errors.As(err, &ua):
		if selfSigned(leaf) {
			return "self-signed"
		}
		top := chain[len(chain)-1]
		r := fmt.Sprintf("signed by an unknown authority (issuer %s)", top.Issuer)
		if len(chain) == 1 {
			r += "; the server sent no intermediate certificate"
		}
		return r
	case errors.As(err, &ci):
		name := "certificate"
		if ci.Cert != nil {
			name = "certificate " + ci.Cert.Subject.String()
			if ci.Cert != leaf {
				name = "intermediate " + name
			}
		}
		switch ci.Reason {
		case x509.Expired:
			if ci.Cert != nil {
				return fmt.Sprintf("%s is outside its validity (%s to %s)", name, day(ci.Cert.NotBefore), day(ci.Cert.NotAfter))
			}
			return name + " is outside its validity"
		case x509.NotAuthorizedToSign:
			return name + " is not allowed to sign certificates"
		case x509.IncompatibleUsage:
			return "certificate is not valid for TLS server authentication (extended key usage)"
		case x509.CANotAuthorizedForThisName:
			return name + " violates a name constraint"
		}
		return "chain not valid: " + err.Error()
	case errors.As(err, &sr):
		return "no system roots to verify the chain against"
	}
	return "chain not valid: " + err.Error()
}

// selfSigned reports whether c is signed by its own key.
func selfSigned(c *x509.Certificate) bool {
	// CheckSignatureFrom would demand the CA flag, which self-signed
	// server certificates usually lack.
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// nameReason says which names the certificate is for.
func nameReason(leaf *x509.Certificate, host string) string {
	names := leaf.DNSNames
	if len(names) == 0 {
		if leaf.Subject.CommonName != "" {
			return fmt.Sprintf("certificate has no DNS names (only CN=%s), not valid for %s", leaf.Subject.CommonName, host)
		}
		return "certificate has no DNS names, not valid for " + host
	}
	shown := names
	more := ""
	if len(shown) > 5 {
		shown, more = shown[:5], fmt.Sprintf(" (and %d more)", len(names)-5)
	}
	return fmt.Sprintf("certificate for %s%s, not %s", strings.Join(shown, ", "), more, host)
}

// day formats t as a UTC date.
func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// days formats a duration in whole days.
func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	switch n {
	case 0:
		return "less than a day"
	case 1:
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
