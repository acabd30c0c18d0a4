package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/seed"
)

func newSeedCmd(g *globals) *cobra.Command {
	var (
		org          string
		domains, day int
		first        int
		dmarcDays    int
		seedNum      uint64
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "seed --org NAME --domains N --days D",
		Short: "Fill an organization with realistic hosted domains, TLS reports and DMARC reports (demos, benchmarks)",
		Long: `Host N generated domains for the organization (created when absent) and store D
days of TLS reports for them, ending yesterday, as the big senders write them:
several senders per domain, weekly rhythm, some domains switching from testing
to enforce, and periods of failures (expired or wrong certificates, STARTTLS
missing, the policy host unreachable). The last --dmarc-days of them also get
DMARC aggregate reports from up to three receivers per domain: the domain's own
servers, a newsletter service signing for it, mailing lists forwarding it, on
some domains a CRM that is not aligned, and on some days spoofers. The same
--seed gives the same data; running it again stores nothing twice.`,
		Args: nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return errors.New("--org: say which organization to fill (it is created when absent)")
			}
			name := strings.ToLower(strings.TrimSpace(org))
			if err := checkOrgName(name); err != nil {
				return err
			}
			if domains < 0 || domains > 100000 || day < 0 || day > 3650 || dmarcDays < 0 || dmarcDays > 3650 {
				return errors.New("--domains: 0 to 100000; --days and --dmarc-days: 0 to 3650")
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			orgID, err := ensureOrg(ctx, s.st, name, name)
			if err != nil {
				return err
			}
			start := time.Now()
			progress := func(d, n int) {}
			if !asJSON && isTerminal(g.stderr) {
				progress = func(d, n int) { fmt.Fprintf(g.stderr, "\rday %d of %d", d, n) }
			}
			stats, err := seed.Run(ctx, s.st, s.host.Settings(), seed.Options{
				Org: orgID, Domains: domains, First: first, Days: day, DMARCDays: dmarcDays, Seed: seedNum, Progress: progress,
			})
			if !asJSON && isTerminal(g.stderr) {
				fmt.Fprintln(g.stderr)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{
					"org": name, "domains_added": stats.Domains, "domains_existing": stats.Existing,
					"reports": stats.Reports, "duplicates": stats.Duplicates,
					"sessions": stats.Sessions, "failed_sessions": stats.Failed,
					"dmarc_reports": stats.DMARCReports, "dmarc_duplicates": stats.DMARCDuplicates, "dmarc_messages": stats.DMARCMessages,
					"seconds": time.Since(start).Seconds(),
				})
			}
			fmt.Fprintf(g.stdout, "%s: %d domains hosted (%d there already), %d TLS reports stored, %d sessions of which %d failed; %d DMARC reports stored, %d messages; %d reports there already; in %s\n",
				name, stats.Domains, stats.Existing, stats.Reports, stats.Sessions, stats.Failed, stats.DMARCReports, stats.DMARCMessages,
				stats.Duplicates+stats.DMARCDuplicates, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&org, "org", "", "organization to fill (created when absent)")
	f.IntVar(&domains, "domains", 10, "hosted domains to make")
	f.IntVar(&day, "days", 30, "days of TLS reports, ending yesterday")
	f.IntVar(&dmarcDays, "dmarc-days", 30, "of those days, how many (the last) also get DMARC aggregate reports; 0: none")
	f.IntVar(&first, "first", 0, "index of the first generated domain name (to give two organizations different names)")
	f.Uint64Var(&seedNum, "seed", 1, "random seed: the same seed makes the same data")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
