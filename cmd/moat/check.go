package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

// maxParallelChecks bounds the domains checked at once.
const maxParallelChecks = 4

func newCheckCmd(g *globals) *cobra.Command {
	var (
		asJSON       bool
		selectors    []string
		failUnder    string
		resolverAddr string
		timeout      time.Duration
		caFile       string
		smtpPort     int
		httpsPort    int
		allowPrivate bool
	)
	cmd := &cobra.Command{
		Use:   "check DOMAIN... [--json] [--dkim-selector S ...] [--fail-under GRADE] [--resolver ADDR] [--timeout 20s] [--ca-file PEM] [--smtp-port 25] [--allow-private]",
		Short: "Check a domain's email security and rate it from A to F",
		Long: `Check everything that secures a domain's email: MX, SPF, DKIM, DMARC, MTA-STS,
TLS-RPT, BIMI, and STARTTLS with a valid certificate on every MX host. Each
finding says what was found, why it matters, and the exact DNS record or change
that fixes it. The score (0 to 100) and grade (A to F) follow the rules in
README.md ("Domain check"), so a score can be recomputed by hand from the findings.

Needs no data directory or database (usable in CI). Whether this Moat hosts the
domain's MTA-STS policy is reported only when a data directory or database
already exists; none is ever created.

Policies and logos are never fetched from, and MX hosts never probed at,
private, loopback or link-local addresses unless --allow-private is given.

Exit code 0 when every domain was checked (and meets --fail-under), 2 when a
domain's grade is below --fail-under, 1 when a check could not run.`,
		Args: nArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if failUnder != "" && check.GradeRank(failUnder) < 0 {
				return fmt.Errorf("check: --fail-under %q: want a grade A, B, C, D, E or F", failUnder)
			}
			domains := make([]string, len(args))
			for i, a := range args {
				d, err := dnsname.Parse(a, dnsname.Domain)
				if err != nil {
					return err
				}
				domains[i] = d
			}
			opts := check.Options{
				Timeout:       timeout,
				SMTPPort:      smtpPort,
				HTTPSPort:     httpsPort,
				AllowPrivate:  allowPrivate,
				DKIMSelectors: selectors,
			}
			if err := setResolver(&opts, resolverAddr); err != nil {
				return err
			}
			if caFile != "" {
				pool, err := rootsWith(caFile)
				if err != nil {
					return err
				}
				opts.RootCAs = pool
			}
			hosted, closeStore := g.hostedLookup(cmd)
			defer closeStore()
			opts.Hosted = hosted

			reports, errs := checkAll(cmd.Context(), check.New(opts), domains)
			if err := writeReports(g, reports, asJSON); err != nil {
				return err
			}
			var failed []error
			for _, err := range errs {
				if err != nil {
					// Check's errors name the domain.
					failed = append(failed, err)
				}
			}
			if len(failed) > 0 {
				return errors.Join(failed...)
			}
			if failUnder != "" {
				var below []string
				for _, r := range reports {
					if r != nil && check.GradeRank(r.Grade) > check.GradeRank(failUnder) {
						below = append(below, fmt.Sprintf("%s has grade %s (score %d)", r.Domain, r.Grade, r.Score))
					}
				}
				if len(below) > 0 {
					return &exitErr{code: exitNotGreen, err: fmt.Errorf("below --fail-under %s: %s", strings.ToUpper(failUnder), strings.Join(below, "; "))}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON: one object for one domain, an array for several (schema in the README, \"Domain check\")")
	f.StringArrayVar(&selectors, "dkim-selector", nil, "DKIM selector to check besides the common ones; repeat for several")
	f.StringVar(&failUnder, "fail-under", "", "exit with code 2 when a domain's grade is below this one (A to F)")
	f.StringVar(&resolverAddr, "resolver", "", "recursive resolver host:port for every DNS query (default: the system's; its first /etc/resolv.conf server for DNSSEC and DANE)")
	f.DurationVar(&timeout, "timeout", 20*time.Second, "time limit of each domain's whole check")
	f.StringVar(&caFile, "ca-file", "", "PEM file of extra trusted roots (private PKI, tests), added to the system roots")
	f.IntVar(&smtpPort, "smtp-port", 25, "port probed on MX hosts (tests)")
	f.IntVar(&httpsPort, "https-port", 443, "port of MTA-STS policy hosts and BIMI logo hosts (tests)")
	f.BoolVar(&allowPrivate, "allow-private", false, "allow fetching from and probing private, loopback and link-local addresses")
	return cmd
}

// setResolver sets the resolver and the raw-query address: every query to
// addr when given, else the system resolver and its first server.
func setResolver(opts *check.Options, addr string) error {
	if addr == "" {
		opts.Resolver = &net.Resolver{}
		if sys, err := hosting.SystemResolver(); err == nil {
			opts.DNSAddr = sys
		}
		return nil
	}
	if _, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil || !strings.Contains(addr, ":") {
		// An address or a host name without a port: port 53.
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("check: --resolver %q: %w", addr, err)
	}
	opts.DNSAddr = addr
	opts.Resolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return nil
}

// rootsWith returns the system roots plus the certificates of the PEM
// file.
func rootsWith(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("check: --ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("check: --ca-file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// hostedLookup opens the store when a database or data directory already
// exists, and returns the function telling whether a domain is hosted
// (nil when there is no store) and a function that closes the store. It
// never creates a data directory; a store that fails to open is reported
// on stderr and the check goes on without it.
func (g *globals) hostedLookup(cmd *cobra.Command) (func(context.Context, string) (bool, error), func()) {
	nothing := func() {}
	c, err := g.loadConfig(cmd)
	if err != nil {
		fmt.Fprintf(g.stderr, "moat: check: configuration not loaded, hosting not reported: %v\n", err)
		return nil, nothing
	}
	db := strings.TrimSpace(c.Database)
	if db == "" || strings.HasPrefix(strings.ToLower(db), "sqlite:") {
		dir := c.DataDir
		if rest, ok := strings.CutPrefix(db, "sqlite:"); ok && strings.Trim(rest, "/") != "" {
			dir = strings.TrimPrefix(rest, "//")
		}
		if _, err := os.Stat(filepath.Join(dir, store.SQLiteFile)); err != nil {
			return nil, nothing
		}
	}
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := openStore(cmd.Context(), log, c)
	if err != nil {
		fmt.Fprintf(g.stderr, "moat: check: store not opened, hosting not reported: %v\n", err)
		return nil, nothing
	}
	hosted := func(ctx context.Context, domain string) (bool, error) {
		_, err := st.Domain(ctx, domain)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, store.ErrNotFound):
			return false, nil
		}
		return false, err
	}
	return hosted, func() { _ = st.Close() }
}

// checkAll checks the domains, several at once, and returns their reports
// and errors in the order given.
func checkAll(ctx context.Context, c *check.Checker, domains []string) ([]*check.Report, []error) {
	reports := make([]*check.Report, len(domains))
	errs := make([]error, len(domains))
	sem := make(chan struct{}, maxParallelChecks)
	var wg sync.WaitGroup
	for i, d := range domains {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			reports[i], errs[i] = c.Check(ctx, d)
		})
	}
	wg.Wait()
	return reports, errs
}

// writeReports prints the reports that exist: JSON (an object for one
// domain, an array for several) or text.
func writeReports(g *globals, reports []*check.Report, asJSON bool) error {
	var ok []*check.Report
	for _, r := range reports {
		if r != nil {
			ok = append(ok, r)
		}
	}
	if asJSON {
		switch {
		case len(reports) == 1 && len(ok) == 1:
			return printJSON(g.stdout, ok[0])
		case len(reports) > 1:
			if ok == nil {
				ok = []*check.Report{}
			}
			return printJSON(g.stdout, ok)
		}
		return nil
	}
	color := useColor(g.stdout)
	for i, r := range ok {
		if i > 0 {
			fmt.Fprintln(g.stdout)
		}
		if err := check.WriteText(g.stdout, r, check.TextOptions{Color: color}); err != nil {
			return err
		}
	}
	return nil
}

// useColor reports whether w is a terminal and NO_COLOR is unset
// (https://no-color.org).
func useColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
