package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/moatmail/moat/internal/smtpprobe"
)

// expiringSoon is how close to expiry an MX certificate gets a warning.
const expiringSoon = 14 * 24 * time.Hour

// probeView is the JSON detail of one probe.
type probeView struct {
	Host       string   `json:"host"`
	Addr       string   `json:"addr,omitempty"`
	Banner     string   `json:"banner,omitempty"`
	STARTTLS   bool     `json:"starttls"`
	TLSVersion string   `json:"tls_version,omitempty"`
	Cipher     string   `json:"cipher,omitempty"`
	Subject    string   `json:"subject,omitempty"`
	Names      []string `json:"names,omitempty"`
	Issuer     string   `json:"issuer,omitempty"`
	NotAfter   string   `json:"not_after,omitempty"`
	DaysLeft   *int     `json:"days_left,omitempty"`
	Verified   bool     `json:"verified"`
	Reason     string   `json:"reason,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	Steps      []string `json:"steps,omitempty"`
}

func viewProbe(p *smtpprobe.Result) *probeView {
	v := &probeView{Host: p.Host, Banner: p.Banner, STARTTLS: p.STARTTLS, Verified: p.Verified, Reason: p.Reason, Warnings: p.Warnings}
	if p.Addr.IsValid() {
		v.Addr = p.Addr.String()
	}
	if p.TLSVersion != 0 {
		v.TLSVersion = tls.VersionName(p.TLSVersion)
		v.Cipher = tls.CipherSuiteName(p.CipherSuite)
	}
	if len(p.Chain) > 0 {
		leaf := p.Chain[0]
		v.Subject = leaf.Subject.String()
		v.Names = leaf.DNSNames
		v.Issuer = leaf.Issuer.String()
		v.NotAfter = leaf.NotAfter.UTC().Format(time.RFC3339)
		days := int(p.ExpiresIn.Hours() / 24)
		v.DaysLeft = &days
	}
	for _, s := range p.Steps {
		v.Steps = append(v.Steps, fmt.Sprintf("%s %s", s.Name, s.Duration.Round(100*time.Microsecond)))
	}
	return v
}

// evalTransport makes the findings of each MX host's resolution and probe.
func (r *run) evalTransport() {
	if r.mx.null {
		return
	}
	for _, h := range r.mx.hosts {
		switch {
		case h.addrErr != nil:
			r.add("mx.host-unresolvable", fmt.Sprintf("MX host %s does not resolve: %v", h.name, h.addrErr),
				fmt.Sprintf("Publish an A or AAAA record for %s., or point the MX record at a host that has one.", h.name), nil)
			continue
		case h.refused:
			r.add("mx.private-address", fmt.Sprintf("MX host %s resolves only to non-public addresses (%s); it was not probed.", h.name, joinAddrs(h.addrs)),
				fmt.Sprintf("Give %s. a public address.", h.name), nil)
			continue
		case h.probe == nil:
			continue
		}
		r.evalProbe(h.name, h.probe)
	}
}

func (r *run) evalProbe(host string, p *smtpprobe.Result) {
	v := viewProbe(p)
	where := host
	if p.Addr.IsValid() {
		where = fmt.Sprintf("%s (%s)", host, p.Addr)
	}
	reason := p.Reason
	if reason == "" && p.Err != nil {
		reason = p.Err.Error()
	}
	switch {
	case p.Err == nil || errors.Is(p.Err, smtpprobe.ErrCertificate):
		// A handshake took place; the certificate is judged below.
	case errors.Is(p.Err, smtpprobe.ErrNoSTARTTLS):
		r.add("starttls.missing", fmt.Sprintf("%s does not offer STARTTLS in its EHLO reply.", where),
			fmt.Sprintf("Enable STARTTLS on %s with a certificate for %s (Postfix: smtpd_tls_security_level = may and smtpd_tls_chain_files; Exim: tls_advertise_hosts = * and tls_certificate).", host, host), v)
		return
	case errors.Is(p.Err, smtpprobe.ErrTLS):
		r.add("starttls.handshake", fmt.Sprintf("%s offers STARTTLS but the TLS handshake fails: %s", where, reason),
			fmt.Sprintf("Fix the TLS configuration of %s: TLS 1.2 or later, a certificate and key that match.", host), v)
		return
	default:
		r.add("starttls.unreachable", fmt.Sprintf("%s: %s", where, reason),
			fmt.Sprintf("Make %s accept SMTP connections on port %d from the internet.", host, r.opts.SMTPPort), v)
		return
	}
	oldTLS := p.TLSVersion != 0 && p.TLSVersion < tls.VersionTLS12
	if oldTLS {
		r.add("starttls.tls-old", fmt.Sprintf("%s negotiated %s.", where, tls.VersionName(p.TLSVersion)),
			fmt.Sprintf("Enable TLS 1.2 and 1.3 on %s (Postfix: smtpd_tls_protocols = >=TLSv1.2).", host), v)
	}
	if p.Err != nil || !p.Verified {
		id, fix := r.certProblem(host, p)
		r.add(id, fmt.Sprintf("%s presents a certificate that does not validate: %s", where, reason), fix, v)
		return
	}
	left := p.ExpiresIn
	if left < expiringSoon {
		r.add("starttls.cert-expiring", fmt.Sprintf("The certificate of %s expires in %s (%s).", where, daysText(left), v.NotAfter),
			fmt.Sprintf("Renew the certificate of %s now, and check that automatic renewal works.", host), v)
	}
	if oldTLS {
		return
	}
	r.add("starttls.ok", fmt.Sprintf("%s: STARTTLS, %s, certificate valid for %s until %s (%s left).",
		where, tls.VersionName(p.TLSVersion), host, v.NotAfter[:10], daysText(left)), "", v)
}

// certProblem classifies a certificate that failed validation, from the
// certificate itself and the x509 error when the probe wraps one.
func (r *run) certProblem(host string, p *smtpprobe.Result) (id, fix string) {
	var leaf *x509.Certificate
	if len(p.Chain) > 0 {
		leaf = p.Chain[0]
	}
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	now := r.opts.Now()
	switch {
	case leaf != nil && now.After(leaf.NotAfter), errors.As(p.Err, &invErr) && invErr.Reason == x509.Expired:
		expired := ""
		if leaf != nil {
			expired = " (it expired on " + leaf.NotAfter.UTC().Format(time.DateOnly) + ")"
		}
		return "starttls.cert-expired", fmt.Sprintf("Renew the certificate of %s%s and reload the mail server.", host, expired)
	case leaf != nil && leaf.VerifyHostname(host) != nil, errors.As(p.Err, &hostErr):
		covers := "no DNS name"
		if leaf != nil && len(leaf.DNSNames) > 0 {
			covers = strings.Join(leaf.DNSNames, ", ")
		}
		return "starttls.cert-name", fmt.Sprintf("Install a certificate whose subjectAltName includes %s (the current one covers %s).", host, covers)
	case errors.As(p.Err, &authErr) || leaf != nil && r.untrusted(leaf, p.Chain[1:], now):
		return "starttls.cert-untrusted", fmt.Sprintf("Install a certificate for %s issued by a public CA (for example by ACME), with its intermediate certificates.", host)
	}
	return "starttls.cert-invalid", fmt.Sprintf("Install a valid certificate for %s with its full chain.", host)
}

func daysText(d time.Duration) string {
	days := int(d.Hours() / 24)
	if days == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", days)
}

// dnssecData is the AD bit of the domain's MX answer.
type dnssecData struct {
	ad  bool
	err error
}

func (r *run) gatherDNSSEC(ctx context.Context) {
	if r.opts.DNSAddr == "" {
		return
	}
	done := r.timed("dnssec", "")
	r.dnssec.ad, r.dnssec.err = smtpprobe.AuthenticatedData(ctx, r.opts.DNSAddr, dns.Fqdn(r.domain), dns.TypeMX)
	done()
}

// evalDNSSEC makes the informational DNSSEC and DANE findings.
func (r *run) evalDNSSEC() {
	switch {
	case r.opts.DNSAddr == "":
		r.add("dnssec.not-checked", "DNSSEC and DANE were not checked: no DNS server address is known (pass --resolver).", "", nil)
		return
	case r.dnssec.err != nil:
		r.add("dnssec.not-checked", fmt.Sprintf("DNSSEC was not checked: the query to %s failed: %v", r.opts.DNSAddr, r.dnssec.err), "", nil)
	case r.dnssec.ad:
		r.add("dnssec.signed", fmt.Sprintf("The resolver %s validated the MX answer of %s with DNSSEC (AD bit set).", r.opts.DNSAddr, r.domain), "", nil)
	default:
		r.add("dnssec.unsigned", fmt.Sprintf("The resolver %s did not set the AD bit on the MX answer of %s: the zone is unsigned or the resolver does not validate.", r.opts.DNSAddr, r.domain), "", nil)
	}
	if r.mx.null {
		return
	}
	for _, h := range r.mx.hosts {
		switch {
		case h.daneErr != nil:
			r.add("dnssec.not-checked", fmt.Sprintf("DANE TLSA lookup for %s failed: %v", h.name, h.daneErr), "", nil)
		case h.dane != nil && len(h.dane.Records) > 0:
			var recs []string
			for _, t := range h.dane.Records {
				recs = append(recs, fmt.Sprintf("%d %d %d %s", t.Usage, t.Selector, t.MatchingType, t.Data))
			}
			validated := "not DNSSEC-validated, so senders ignore them"
			if h.dane.AD {
				validated = "DNSSEC-validated"
			}
			r.add("dane.tlsa", fmt.Sprintf("%s has %s (%s): %s", h.dane.Name, plural(len(recs), "TLSA record", "TLSA records"), validated, strings.Join(recs, "; ")), "", h.dane)
		case h.dane != nil:
			r.add("dane.none", fmt.Sprintf("%s has no TLSA record.", h.dane.Name), "", nil)
		}
	}
}

// untrusted reports whether leaf does not chain to a trusted root.
func (r *run) untrusted(leaf *x509.Certificate, intermediates []*x509.Certificate, now time.Time) bool {
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: r.opts.RootCAs, Intermediates: pool, CurrentTime: now})
	var authErr x509.UnknownAuthorityError
	return errors.As(err, &authErr)
}
