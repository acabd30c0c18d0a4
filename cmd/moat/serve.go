package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/devca"
	"github.com/moatmail/moat/internal/dnsserver"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/policyserver"
	"github.com/moatmail/moat/internal/snapshot"
	"github.com/moatmail/moat/internal/store"
)

// DemoDomain is the domain `moat serve --dev` hosts so there is something
// to query at once.
const DemoDomain = "demo.moat.test"

func newServeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Moat: authoritative DNS, HTTPS policy server, certificates",
		Long: `Run Moat's servers: the authoritative DNS server for the service zone, the
HTTPS MTA-STS policy server with on-demand ACME certificates, and the HTTP
listener for ACME challenges. With --dev everything runs on 127.0.0.1 with a
local development CA and a demo domain, and no DNS or certificates to set up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := c.ValidateServe(); err != nil {
				return err
			}
			return serve(cmd.Context(), g, c)
		},
	}
	addSchemaFlags(cmd.Flags(), func(name string) bool { return !isPersistent(name) })
	return cmd
}

// serve wires the services and runs them until ctx ends or one fails.
func serve(ctx context.Context, g *globals, c *config.Config) error {
	log := g.logger(c)
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, err := openStore(ctx, log, c)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("closing the store", "err", err)
		}
	}()
	set := settings(c)
	if c.Dev {
		if err := ensureDemo(ctx, st, set); err != nil {
			return err
		}
	}

	holder := new(snapshot.Holder)
	watcher := hosting.NewWatcher(log, st, set, holder, c.Store.PollInterval)
	if _, err := watcher.Refresh(ctx, true); err != nil {
		return fmt.Errorf("building the serving snapshot: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	running := 0
	start := func(name string, fn func() error) {
		running++
		go func() {
			err := fn()
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("%s: %w", name, err)
			} else {
				err = nil
			}
			errc <- err
		}()
	}
	start("snapshot watcher", func() error { watcher.Run(ctx); return nil })

	// The ingester outlives the listeners: on shutdown they stop first, so
	// every report they accepted is committed and answered.
	ingCtx, stopIngester := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIngester()
	ing := intake.NewIngester(log, st, func(domain string) bool { return holder.Load().Lookup(domain) != nil },
		intake.IngestOpts{MaxDecompressed: c.Intake.MaxReportJSON})
	ingDone := make(chan struct{})
	go func() { defer close(ingDone); _ = ing.Run(ingCtx) }()
	defer func() { stopIngester(); <-ingDone }()
	reportHandler := intake.NewHTTPHandler(log, ing, intake.HTTPOpts{MaxBody: c.Intake.MaxReportSize, RatePerIP: c.Intake.RatePerIP})

	var a addrs
	if c.DNS.Listen != "" {
		srv, ls, err := listenDNS(ctx, log, holder, c)
		if err != nil {
			cancel()
			return drain(errc, running, err)
		}
		a.dns = ls.Addr()
		start("dns server", func() error { return srv.ServeListeners(ctx, ls) })
		log.Info("dns server listening", "addr", a.dns, "zone", c.Zone)
	}
	var ps *policyserver.Server
	if c.HTTPS.Listen != "" {
		var ca *devca.CA
		if c.Dev {
			if ca, err = devca.LoadOrCreate(c.DataDir); err != nil {
				cancel()
				return drain(errc, running, err)
			}
		}
		services := map[string]http.Handler{}
		if c.Intake.Host != "" {
			// POST /v1/tlsrpt on the HTTPS listener for the intake host; the
			// certificate for it comes from the same machinery.
			services[c.Intake.Host] = reportHandler
		}
		ps, err = policyserver.New(log, holder, st, policyserver.Options{
			ACMECA: c.ACME.CA, ACMEEmail: c.ACME.Email, ACMECARoot: c.ACME.CARoot, DevCA: ca, Services: services,
		})
		if err != nil {
			cancel()
			return drain(errc, running, err)
		}
		hl, err := net.Listen("tcp", c.HTTPS.Listen)
		if err != nil {
			cancel()
			return drain(errc, running, fmt.Errorf("https listener: %w", err))
		}
		a.https = hl.Addr().String()
		var pl net.Listener
		if c.HTTP.Listen != "" {
			if pl, err = net.Listen("tcp", c.HTTP.Listen); err != nil {
				hl.Close()
				cancel()
				return drain(errc, running, fmt.Errorf("http listener: %w", err))
			}
			a.http = pl.Addr().String()
		}
		start("policy server", func() error { return ps.Serve(ctx, hl, pl) })
	}
	var tlsConf *tls.Config
	if ps != nil {
		tlsConf = &tls.Config{GetCertificate: ps.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	if c.Intake.ReportListen != "" {
		l, err := net.Listen("tcp", c.Intake.ReportListen)
		if err != nil {
			cancel()
			return drain(errc, running, fmt.Errorf("report listener: %w", err))
		}
		a.report = l.Addr().String()
		if c.Intake.ReportTLS {
			if tlsConf == nil {
				l.Close()
				cancel()
				return drain(errc, running, errors.New("intake.report_tls needs the certificate machinery of the HTTPS listener (https.listen); set intake.report_tls: false behind a TLS proxy"))
			}
			l = tls.NewListener(l, tlsConf)
		}
		srv := &http.Server{Handler: reportHandler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			WriteTimeout: 2 * time.Minute, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		start("report listener", func() error { return serveHTTP(ctx, srv, l) })
		log.Info("report intake listening", "addr", a.report, "tls", c.Intake.ReportTLS)
	}
	if c.Intake.SMTPListen != "" {
		l, err := net.Listen("tcp", c.Intake.SMTPListen)
		if err != nil {
			cancel()
			return drain(errc, running, fmt.Errorf("smtp listener: %w", err))
		}
		a.smtp = l.Addr().String()
		host := c.Intake.Host
		if host == "" {
			host = "localhost"
		}
		var smtpTLS *tls.Config
		if tlsConf != nil && c.Intake.Host != "" {
			// Sending MTAs often send no SNI, or the name they looked up:
			// whatever they ask, they get the intake host's certificate.
			smtpTLS = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				h := *hello
				h.ServerName = c.Intake.Host
				return ps.GetCertificate(&h)
			}}
		}
		smtpSrv := intake.NewSMTPServer(log, ing, intake.SMTPOpts{
			Hostname: host, TLSConfig: smtpTLS, Recipients: c.Intake.Addresses,
			MaxMessageBytes: c.Intake.MaxReportSize * 2, RequireDKIM: c.Intake.RequireDKIM,
		})
		start("smtp intake", func() error { return smtpSrv.Serve(ctx, l) })
		log.Info("smtp intake listening", "addr", a.smtp, "recipients", c.Intake.Addresses, "starttls", smtpTLS != nil)
	}
	if c.Dev {
		printDevHelp(g, c, a)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return drain(errc, running, nil)
	case err := <-errc:
		running--
		cancel()
		return drain(errc, running, err)
	}
}

// addrs are the addresses the listeners got.
type addrs struct{ dns, https, http, report, smtp string }

// serveHTTP serves srv on l until ctx ends, then shuts it down gracefully.
func serveHTTP(ctx context.Context, srv *http.Server, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

// drain waits for the running services to stop and returns first, or the
// first error they report.
func drain(errc <-chan error, running int, first error) error {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for ; running > 0; running-- {
		select {
		case err := <-errc:
			if first == nil {
				first = err
			}
		case <-timeout.C:
			return errors.Join(first, errors.New("services did not stop within 30s"))
		}
	}
	return first
}

func listenDNS(ctx context.Context, log *slog.Logger, holder *snapshot.Holder, c *config.Config) (*dnsserver.Server, *dnsserver.Listeners, error) {
	hosts := map[string][]netip.Addr{}
	for name, addrs := range c.DNS.Hosts {
		for _, a := range addrs {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, nil, fmt.Errorf("dns.hosts.%s: %w", name, err)
			}
			hosts[name] = append(hosts[name], ip)
		}
	}
	srv, err := dnsserver.New(log, holder, dnsserver.Options{
		Zone: c.Zone, Nameservers: c.DNS.Nameservers, Hostmaster: c.DNS.Hostmaster,
		Hosts: hosts, TTL: c.DNS.TTL,
	})
	if err != nil {
		return nil, nil, err
	}
	ls, err := srv.Listen(ctx, c.DNS.Listen)
	if err != nil {
		return nil, nil, err
	}
	return srv, ls, nil
}

// ensureDemo hosts the demo domain in --dev mode, once.
func ensureDemo(ctx context.Context, st store.Store, set hosting.Settings) error {
	if _, err := st.Domain(ctx, DemoDomain); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	_, err := hosting.New(st, set, nil).Add(ctx, DemoDomain, hosting.Spec{MX: []string{"mx1." + DemoDomain, "*.mx." + DemoDomain}})
	if errors.Is(err, store.ErrExists) {
		return nil // another process added it meanwhile
	}
	return err
}

func printDevHelp(g *globals, c *config.Config, a addrs) {
	dnsAddr, httpsAddr := a.dns, a.https
	w := g.stdout
	fmt.Fprintf(w, "\nMoat is running in development mode (data: %s, zone: %s).\n", c.DataDir, c.Zone)
	caFile := c.DataPath(devca.RootFile)
	if dnsAddr != "" {
		host, port, _ := net.SplitHostPort(dnsAddr)
		fmt.Fprintf(w, "\nThe demo domain's MTA-STS and TLS-RPT records, from Moat's DNS server:\n")
		fmt.Fprintf(w, "  dig @%s -p %s +short %s._mta-sts.%s TXT\n", host, port, DemoDomain, c.Zone)
		fmt.Fprintf(w, "  dig @%s -p %s +short %s._smtp._tls.%s TXT\n", host, port, DemoDomain, c.Zone)
	}
	if httpsAddr != "" {
		host, port, _ := net.SplitHostPort(httpsAddr)
		if host == "" || host == "::" || host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		fmt.Fprintf(w, "\nIts policy, over HTTPS with a certificate from the development CA (%s):\n", caFile)
		fmt.Fprintf(w, "  curl --cacert %s --resolve mta-sts.%s:%s:%s https://mta-sts.%s:%s/.well-known/mta-sts.txt\n",
			caFile, DemoDomain, port, host, DemoDomain, port)
	}
	if httpsAddr != "" && c.Intake.Host != "" {
		host, port, _ := net.SplitHostPort(httpsAddr)
		if host == "" || host == "::" || host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		fmt.Fprintf(w, "\nSend a TLS-RPT report by HTTPS (RFC 8460 §5.4):\n")
		fmt.Fprintf(w, "  curl --cacert %s --resolve %s:%s:%s -H 'Content-Type: application/tlsrpt+json' --data-binary @report.json https://%s:%s/v1/tlsrpt\n",
			caFile, c.Intake.Host, port, host, c.Intake.Host, port)
	}
	if a.smtp != "" && len(c.Intake.Addresses) > 0 {
		host, port, _ := net.SplitHostPort(a.smtp)
		if host == "" || host == "::" || host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		fmt.Fprintf(w, "\nOr by mail (SMTP with STARTTLS on %s):\n", a.smtp)
		fmt.Fprintf(w, "  swaks --server %s --port %s --tls --tls-ca-path %s --to %s --attach-type application/tlsrpt+json --attach @report.json\n",
			host, port, caFile, c.Intake.Addresses[0])
	}
	fmt.Fprintf(w, "\nImport reports from files, and see what they say:\n")
	fmt.Fprintf(w, "  moat import --data %s PATH...\n", c.DataDir)
	fmt.Fprintf(w, "  moat reports tlsrpt summary --data %s\n", c.DataDir)
	fmt.Fprintf(w, "\nHost another domain (served within seconds, from another terminal):\n")
	fmt.Fprintf(w, "  moat domains add example.test --mx mx1.example.test --dev --data %s\n", c.DataDir)
	fmt.Fprintf(w, "  moat domains set example.test --mode enforce --dev --data %s\n\n", c.DataDir)
}
