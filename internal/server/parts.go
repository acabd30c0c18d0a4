package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/devca"
	"github.com/moatmail/moat/internal/dnsserver"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/policyserver"
	"github.com/moatmail/moat/internal/store"
)

// builtinParts are the parts every `moat serve` runs, in start order: the
// serving snapshot first (nothing is served before it is built), the
// ingester before the listeners that feed it (and so stopped after them),
// the HTTPS listener before the listeners that borrow its certificates.
// Which parts run follows the instance's roles (config roles).
func builtinParts(c *config.Config) []Part {
	parts := []Part{&snapshotPart{}}
	intake, web := c.HasRole(config.RoleIntake), c.HasRole(config.RoleWeb)
	if intake || web { // the dashboard and API take uploads
		parts = append(parts, &ingesterPart{})
	}
	if c.HasRole(config.RoleDNS) && c.DNS.Listen != "" {
		parts = append(parts, &dnsPart{})
	}
	// The HTTPS listener and its certificates serve the policies, and the
	// intake and web hosts of those roles.
	if c.HTTPS.Listen != "" && (c.HasRole(config.RolePolicy) || intake || web) {
		parts = append(parts, &policyPart{})
	}
	if intake && c.Intake.ReportListen != "" {
		parts = append(parts, &reportPart{})
	}
	if intake && c.Intake.SMTPListen != "" {
		parts = append(parts, &smtpPart{})
	}
	if intake || web { // background jobs on the report data
		parts = append(parts, &leaderPart{})
	}
	return parts
}

// snapshotPart builds the first serving snapshot and keeps it current with
// the store.
type snapshotPart struct {
	g *group
	w *hosting.Watcher
}

func (*snapshotPart) Name() string { return "snapshot watcher" }

func (p *snapshotPart) Start(ctx context.Context, env *Env) error {
	w := hosting.NewWatcher(env.Log, env.Store, env.Settings, env.Snapshots, env.Config.Store.PollInterval)
	p.w = w
	if _, err := w.Refresh(ctx, true); err != nil {
		return fmt.Errorf("building the serving snapshot: %w", err)
	}
	g, rctx := startGroup(ctx, p.Name())
	p.g = g
	g.goServe(rctx, env, func() error { w.Run(rctx); return nil })
	return nil
}

func (p *snapshotPart) Stop(ctx context.Context) error { return p.g.stop(ctx) }

// ingesterPart runs the group-commit report ingester.
type ingesterPart struct{ g *group }

func (*ingesterPart) Name() string { return "report ingester" }

func (p *ingesterPart) Start(ctx context.Context, env *Env) error {
	g, rctx := startGroup(ctx, p.Name())
	p.g = g
	g.goServe(rctx, env, func() error { return env.Ingester.Run(rctx) })
	if env.Config.HasRole(config.RoleIntake) {
		// Every instance that takes reports stores those of the spool
		// (intake.smtp_spool), its own and those left by others.
		g.goServe(rctx, env, func() error { return env.Ingester.RunSpool(rctx) })
	}
	return nil
}

func (p *ingesterPart) Stop(ctx context.Context) error { return p.g.stop(ctx) }

// dnsPart is the authoritative DNS server of the service zone.
type dnsPart struct {
	g   *group
	srv *dnsserver.Server
}

func (*dnsPart) Name() string { return "dns server" }

func (p *dnsPart) Start(ctx context.Context, env *Env) error {
	c := env.Config
	hosts := map[string][]netip.Addr{}
	for name, addrs := range c.DNS.Hosts {
		for _, a := range addrs {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return fmt.Errorf("dns.hosts.%s: %w", name, err)
			}
			hosts[name] = append(hosts[name], ip)
		}
	}
	// RFC 7489 §7.1: the domains of the DMARC addresses authorize reports
	// about the hosted domains (those inside the zone; dnsserver ignores
	// the others).
	var reportDomains []string
	for _, a := range c.Intake.DMARCAddresses {
		if at := strings.LastIndexByte(a, '@'); at >= 0 {
			reportDomains = append(reportDomains, a[at+1:])
		}
	}
	srv, err := dnsserver.New(env.Log, env.Snapshots, dnsserver.Options{
		Zone: c.Zone, Nameservers: c.DNS.Nameservers, Hostmaster: c.DNS.Hostmaster, Hosts: hosts, TTL: c.DNS.TTL,
		DMARCReportDomains: reportDomains,
	})
	if err != nil {
		return err
	}
	ls, err := srv.Listen(ctx, c.DNS.Listen)
	if err != nil {
		return err
	}
	p.srv = srv
	addr := ls.Addr()
	env.boundString(ListenerDNS, addr)
	g, rctx := startGroup(ctx, p.Name())
	p.g = g
	g.goServe(rctx, env, func() error { return srv.ServeListeners(rctx, ls) })
	env.Log.Info("dns server listening", "addr", addr, "zone", c.Zone)
	return nil
}

func (p *dnsPart) Stop(ctx context.Context) error { return p.g.stop(ctx) }

// policyPart is the HTTPS policy server with its certificate machinery
// (ACME, or the development CA under --dev), the other HTTPS hosts, and the
// HTTP listener for ACME HTTP-01 challenges.
type policyPart struct {
	g  *group
	ps *policyserver.Server
}

func (*policyPart) Name() string { return "policy server" }

func (p *policyPart) Start(ctx context.Context, env *Env) error {
	c := env.Config
	var ca *devca.CA
	if c.Dev {
		var err error
		if ca, err = devca.LoadOrCreate(c.DataDir); err != nil {
			return err
		}
	}
	ps, err := policyserver.New(env.Log, env.Snapshots, env.Store, policyserver.Options{
		ACMECA: c.ACME.CA, ACMEEmail: c.ACME.Email, ACMECARoot: c.ACME.CARoot, DevCA: ca,
		Services: maps.Clone(env.HTTPSHosts), ReadHeaderTimeout: c.HTTPS.ReadHeaderTimeout,
		NoPolicies: !c.HasRole(config.RolePolicy),
		OnCertificate: func(ctx context.Context, name string, leaf *x509.Certificate) {
			recordCertificate(ctx, env, name, leaf)
		},
	})
	if err != nil {
		return err
	}
	p.ps = ps
	var lc net.ListenConfig
	hl, err := lc.Listen(ctx, "tcp", c.HTTPS.Listen)
	if err != nil {
		return fmt.Errorf("https listener: %w", err)
	}
	var pl net.Listener
	if c.HTTP.Listen != "" {
		if pl, err = lc.Listen(ctx, "tcp", c.HTTP.Listen); err != nil {
			_ = hl.Close()
			return fmt.Errorf("http listener: %w", err)
		}
		env.Bound(ListenerHTTP, pl.Addr())
	}
	env.Bound(ListenerHTTPS, hl.Addr())
	env.getCert = ps.GetCertificate
	g, rctx := startGroup(ctx, p.Name())
	p.g = g
	g.goServe(rctx, env, func() error { return ps.Serve(rctx, hl, pl) })
	return nil
}

// Stop ends Serve, which shuts the servers down gracefully within the
// policy server's own ShutdownTimeout.
func (p *policyPart) Stop(ctx context.Context) error { return p.g.stop(ctx) }

// reportPart is intake.report_listen: POST /v1/tlsrpt on a listener of its
// own, with TLS (the intake host's certificate, whatever the client's SNI)
// or plain HTTP behind a TLS-terminating proxy.
type reportPart struct {
	g   *group
	srv *http.Server
}

func (*reportPart) Name() string { return "report listener" }

func (p *reportPart) Start(ctx context.Context, env *Env) error {
	c := env.Config
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", c.Intake.ReportListen)
	if err != nil {
		return fmt.Errorf("report listener: %w", err)
	}
	env.Bound(ListenerReport, l.Addr())
	if c.Intake.ReportTLS {
		// A report sender that sends no server name, or another one, gets
		// the intake host's certificate: this listener serves nothing else.
		l = tls.NewListener(l, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: env.CertificateFor(c.Intake.Host)})
	}
	p.srv = &http.Server{Handler: env.reportHandler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(env.Log.Handler(), slog.LevelDebug)}
	g, rctx := startGroup(ctx, p.Name())
	p.g = g
	g.goServe(rctx, env, func() error {
		if err := p.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	env.Log.Info("report intake listening", "addr", l.Addr().String(), "tls", c.Intake.ReportTLS)
	return nil
}

// Stop lets the requests in progress finish (their reports are committed
// and answered) until ctx ends, then closes what is left.
func (p *reportPart) Stop(ctx context.Context) error {
	p.g.beginStop()
	err := p.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, p.srv.Close())
	}
	return errors.Join(err, p.g.stop(ctx))
}

// smtpPart is the SMTP report intake, STARTTLS with the intake host's
// certificate.
type smtpPart struct {
	g   *group
	srv *intake.SMTPServer
	l   net.Listener
}

func (*smtpPart) Name() string { return "smtp intake" }

func (p *smtpPart) Start(ctx context.Context, env *Env) error {
	c := env.Config
	// No TCP keep-alive: a session is bounded by the intake's read
	// time-out, and the four socket options it sets on every accepted
	// connection are a measurable part of a short session.
	lc := net.ListenConfig{KeepAlive: -1}
	l, err := lc.Listen(ctx, "tcp", c.Intake.SMTPListen)
	if err != nil {
		return fmt.Errorf("smtp listener: %w", err)
	}
	env.Bound(ListenerSMTP, l.Addr())
	p.l = l
	host := c.Intake.Host
	if host == "" {
		host = "localhost"
	}
	var tc *tls.Config
	if get := env.CertificateFor(c.Intake.Host); get != nil && c.Intake.Host != "" {
		// Sending MTAs often send no SNI, or the name they looked up:
		// whatever they ask, they get the intake host's certificate.
		tc = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: get}
	}
	p.srv = intake.NewSMTPServer(env.Log, env.Ingester, intake.SMTPOpts{
		Hostname: host, TLSConfig: tc, Recipients: c.Intake.Addresses, DMARCRecipients: c.Intake.DMARCAddresses,
		MaxMessageBytes: c.Intake.MaxReportSize * 2, RequireDKIM: c.Intake.RequireDKIM,
		MaxConnectionsPerIP: int(c.Intake.SMTPConnsPerIP), Spool: c.Intake.SMTPSpool,
	})
	g, rctx := startGroup(ctx, p.Name())
	p.g = g
	g.goServe(rctx, env, func() error { return p.srv.Serve(rctx, l) })
	env.Log.Info("smtp intake listening", "addr", l.Addr().String(), "recipients", c.Intake.Addresses, "starttls", tc != nil)
	return nil
}

// Stop lets the sessions in progress finish until ctx ends (a message
// whose transfer is cut is not acknowledged, so its sender retries).
func (p *smtpPart) Stop(ctx context.Context) error {
	p.g.beginStop()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = p.srv.Shutdown(sctx) // on a timeout the cancel below closes the rest
	cancel()
	// A Shutdown that came before Serve began does not reach the listener:
	// close it, so that Serve returns in every case.
	_ = p.l.Close()
	return p.g.stop(ctx)
}

// recordCertificate stores when the policy host of a hosted domain got its
// certificate and until when it is valid: the dashboard shows them and
// marks the event on the domain's charts. Other names (the intake and web
// hosts) are not hosted domains' and are left out.
func recordCertificate(ctx context.Context, env *Env, name string, leaf *x509.Certificate) {
	domain, ok := strings.CutPrefix(name, "mta-sts.")
	if !ok {
		return
	}
	issuer := leaf.Issuer.CommonName
	if issuer == "" && len(leaf.Issuer.Organization) > 0 {
		issuer = leaf.Issuer.Organization[0]
	}
	detail := fmt.Sprintf("issued by %s, expires %s", issuer, leaf.NotAfter.UTC().Format("2006-01-02"))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := env.Store.RecordCertificate(ctx, domain, leaf.NotBefore.UTC(), leaf.NotAfter.UTC(), detail)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		env.Log.Warn("recording a certificate failed", "name", name, "err", err)
	}
}
