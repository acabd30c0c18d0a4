package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/dmarcstats"
)

func newDMARCSummaryCmd(g *globals) *cobra.Command {
	var (
		since, by string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "summary [DOMAIN] [--since 30d] [--by day|domain|source|reporter|disposition|header-from]",
		Short: "Messages of DMARC aggregate reports over a period: total, passing and failing DMARC, DKIM and SPF, from the daily rollups",
		Args:  nArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, err := optionalDomain(args)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			from, err := parseSince(since, now)
			if err != nil {
				return err
			}
			if err := dmarcstats.CheckBy(by); err != nil {
				return fmt.Errorf("--%w", err)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			sum, err := dmarcstats.Summarize(cmd.Context(), s.st, dmarcstats.Query{Domain: domain, Since: from, Now: now, By: by})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, sum)
			}
			period := "since " + sum.Since
			if sum.Since == "" {
				period = "all time"
			}
			fmt.Fprintf(g.stdout, "%s, %s: %d messages, %d passing DMARC (%s), %d failing; DKIM pass %d, SPF pass %d\n",
				dash(domain), period, sum.TotalMessages, sum.DMARCPass, percent(sum.DMARCPass, sum.TotalMessages),
				sum.DMARCFail, sum.DKIMPass, sum.SPFPass)
			if by == "" || len(sum.Rows) == 0 {
				return nil
			}
			t := [][]string{{strings.ToUpper(by), "MESSAGES", "DMARC PASS", "DMARC FAIL", "DKIM PASS", "SPF PASS"}}
			for _, r := range sum.Rows {
				t = append(t, []string{dash(r.Key), strconv.FormatInt(r.Messages, 10), strconv.FormatInt(r.DMARCPass, 10),
					strconv.FormatInt(r.DMARCFail, 10), strconv.FormatInt(r.DKIMPass, 10), strconv.FormatInt(r.SPFPass, 10)})
			}
			return table(g.stdout, t)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "30d", "the period: from this many days back (30d, 2w) or this date on; \"\" for everything")
	f.StringVar(&by, "by", "", "also one row per day, domain, source (IP), reporter, disposition or header-from")
	f.BoolVar(&asJSON, "json", false, "print JSON (the integer field total_messages is the sum of the records' counts)")
	return cmd
}
