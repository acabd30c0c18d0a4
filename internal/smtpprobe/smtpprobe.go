// Package smtpprobe probes an MX host the way a sending MTA would: SMTP
// (RFC 5321) banner and EHLO, STARTTLS (RFC 3207), and a TLS handshake
// whose certificate is verified by hand so that the exact reason of a
// failure can be reported (chain, name per RFC 7817 / RFC 6125, expiry).
// It also reads DANE TLSA records (RFC 7672) and the DNSSEC AD bit, as
// information only.
package smtpprobe

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Sentinel errors recorded in Result.Err.
var (
	// ErrResolve means the host's addresses could not be resolved.
	ErrResolve = errors.New("smtpprobe: cannot resolve host")
	// ErrConnect means no address accepted a connection.
	ErrConnect = errors.New("smtpprobe: cannot connect")
	// ErrProtocol means the server's SMTP replies were unexpected or
	// malformed; a *ReplyError carries the code and text when known.
	ErrProtocol = errors.New("smtpprobe: SMTP protocol error")
	// ErrTimeout means a step did not finish within its timeout.
	ErrTimeout = errors.New("smtpprobe: timeout")
	// ErrNoSTARTTLS means the server does not offer STARTTLS.
	ErrNoSTARTTLS = errors.New("smtpprobe: no STARTTLS")
	// ErrTLS means the TLS handshake failed.
	ErrTLS = errors.New("smtpprobe: TLS handshake failed")
	// ErrCertificate means the handshake succeeded but the certificate
	// does not verify; Result.Reason says why.
	ErrCertificate = errors.New("smtpprobe: certificate not valid")
	// ErrDNS means a DNS query for DANE or DNSSEC failed.
	ErrDNS = errors.New("smtpprobe: DNS query failed")
)

// Opts configures Probe. The zero value is usable.
type Opts struct {
	// Resolver resolves the MX host; nil means net.DefaultResolver.
	Resolver IPResolver
	// Port is the SMTP port; zero means 25.
	Port int
	// Timeout bounds each step (resolve, connect to one address, banner,
	// EHLO, STARTTLS, handshake); zero means 10 s. The whole probe is
	// bounded by 6×Timeout.
	Timeout time.Duration
	// HelloName is the EHLO argument; "" means "moat.invalid".
	HelloName string
	// RootCAs verifies the chain; nil means the system roots.
	RootCAs *x509.CertPool
	// Now is the clock for the expiry checks; nil means time.Now.
	Now func() time.Time
	// AllowAddr, when set, is asked about each address before it is
	// dialled and returns an error to refuse it; nil allows every
	// address. bimi.PublicOnly fits.
	AllowAddr func(netip.Addr) error
}

// Step is the duration of one probe step, for a wall-time breakdown.
type Step struct {
	Name     string // "resolve", "connect", "banner", "ehlo", "starttls", "handshake", "quit"
	Duration time.Duration
}

// Result is the outcome of Probe. Err is nil only when the server offers
// STARTTLS and its certificate verifies; it wraps one of the sentinels
// (and is a *ReplyError for an unexpected SMTP reply).
type Result struct {
	Host      string
	Addr      netip.AddrPort // the address connected to (or last tried)
	Connected bool
	Banner    string   // the greeting's text lines joined with "\n", codes removed
	EHLO      []string // the EHLO keywords with their parameters (the lines after the first)
	STARTTLS  bool     // STARTTLS offered

	TLSVersion  uint16              // tls.VersionTLS12 etc.; 0 without a handshake
	CipherSuite uint16              // negotiated suite; tls.CipherSuiteName names it
	Chain       []*x509.Certificate // as presented by the server, leaf first
	Verified    bool                // chain, name and dates valid
	ExpiresIn   time.Duration       // leaf NotAfter minus Now; negative when expired
	Warnings    []string            // weaknesses that do not fail the probe (TLS below 1.2, insecure suite)

	// Reason says exactly why the probe failed or the certificate did not
	// verify, e.g. "certificate for mail.example.net, not mx1.example.com",
	// "expired on 2026-01-02 (325 days ago)", "self-signed", "signed by an
	// unknown authority (issuer CN=...)", "server offers no STARTTLS",
	// "connection refused on 192.0.2.1:25", "timeout after EHLO". Several
	// certificate problems are joined with "; ".
	Reason string
	Err    error
	Steps  []Step
}

// ReplyError is an SMTP reply the probe did not expect. It wraps
// ErrProtocol.
type ReplyError struct {
	Command string // the command answered ("" for the banner)
	Code    int
	Text    string // the reply's text lines joined with " "
}

func (e *ReplyError) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("smtpprobe: greeting: %d %s", e.Code, e.Text)
	}
	return fmt.Sprintf("smtpprobe: %s: unexpected reply %d %s", e.Command, e.Code, e.Text)
}

// Unwrap returns ErrProtocol.
func (e *ReplyError) Unwrap() error { return ErrProtocol }
