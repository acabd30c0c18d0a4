package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/devca"
	"github.com/moatmail/moat/internal/imapintake"
	"github.com/moatmail/moat/internal/server"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/web"
)

func newServeCmd(g *globals) *cobra.Command {
	var addrsFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Moat: authoritative DNS, HTTPS policy server, certificates, report intake",
		Long: `Run Moat's servers: the authoritative DNS server for the service zone, the
HTTPS MTA-STS policy server with on-demand ACME certificates, the HTTP
listener for ACME challenges, and the TLS-RPT report intake by HTTPS and SMTP
(and from the IMAP mailboxes of intake.imap).
With --dev everything runs on 127.0.0.1 with a local development CA and a demo
domain, and no DNS or certificates to set up.`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := c.ValidateServe(); err != nil {
				return err
			}
			return serve(cmd.Context(), g, c, addrsFile)
		},
	}
	addSchemaFlags(cmd.Flags(), func(name string) bool { return !isPersistent(name) })
	cmd.Flags().StringVar(&addrsFile, "addrs-file", "", `once every listener is bound, write their addresses as a JSON object to this file ({"dns": "127.0.0.1:5353", "https": ...}), for scripts that listen on port 0`)
	return cmd
}

// serve runs the assembled system until ctx ends or a part of it fails.
func serve(ctx context.Context, g *globals, c *config.Config, addrsFile string) error {
	log := g.logger(c)
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if c.Database == "" {
		// moat restore must not replace the database under us.
		unlock, err := store.LockServe(c.DataDir)
		if err != nil {
			return err
		}
		defer func() { _ = unlock() }()
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
	var demo *demoAccount
	if c.Dev {
		if demo, err = ensureDemo(ctx, log, st, c); err != nil {
			return err
		}
	}
	var parts []server.PartFunc
	if c.HasRole(config.RoleWeb) {
		parts = append(parts, webPart(log, c, st))
	}
	if len(c.Intake.IMAP) > 0 && c.HasRole(config.RoleIntake) {
		parts = append(parts, imapintake.NewPart(log, c.Intake.IMAP, os.Getenv("MOAT_IMAP_PASSWORD")))
	}
	srv, err := server.New(log, c, st, server.Options{Parts: parts})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	addrs := srv.Addrs()
	if addrsFile != "" {
		if err := writeAddrs(addrsFile, addrs); err != nil {
			_ = srv.Shutdown(context.WithoutCancel(ctx))
			return err
		}
	}
	if c.Dev {
		printDevHelp(g, c, addrs, demo)
	}
	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case failed = <-srv.Failed():
		log.Error("shutting down after a failure", "err", failed)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return errors.Join(failed, srv.Shutdown(sctx))
}

// writeAddrs writes the bound addresses as JSON, atomically (a reader
// never sees half a file).
func writeAddrs(file string, addrs map[string]string) error {
	b, err := json.MarshalIndent(addrs, "", "  ")
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil { //nolint:gosec // addresses, no secret; read by other users' scripts
		return fmt.Errorf("--addrs-file: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("--addrs-file: %w", err)
	}
	return nil
}

func printDevHelp(g *globals, c *config.Config, a map[string]string, demo *demoAccount) {
	dnsAddr, httpsAddr, smtpAddr := a[server.ListenerDNS], a[server.ListenerHTTPS], a[server.ListenerSMTP]
	w := g.stdout
	fmt.Fprintf(w, "\nMoat is running in development mode (data: %s, zone: %s).\n", c.DataDir, c.Zone)
	if webAddr := a[web.ListenerWeb]; webAddr != "" && demo != nil {
		fmt.Fprintf(w, "\nThe dashboard: http://%s/ (API: http://%s/api/v1/openapi.json)\n", webAddr, webAddr)
		fmt.Fprintf(w, "  sign in as %s with the password %s\n", demo.email, demo.password)
	}
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
	if smtpAddr != "" && len(c.Intake.Addresses) > 0 {
		host, port, _ := net.SplitHostPort(smtpAddr)
		if host == "" || host == "::" || host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		fmt.Fprintf(w, "\nOr by mail (SMTP with STARTTLS on %s):\n", smtpAddr)
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
