package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/store"
)

// newDMARCReportsCmd is `moat reports dmarc`: the DMARC aggregate reports
// received (RFC 7489 §7.2, RFC 9990).
func newDMARCReportsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dmarc",
		Short: "DMARC aggregate reports (RFC 7489, RFC 9990): lists, single reports",
	}
	cmd.AddCommand(newDMARCSummaryCmd(g), newDMARCListCmd(g), newDMARCShowCmd(g))
	cmd.AddCommand(newFailureCmds(g)...)
	return cmd
}

func newDMARCListCmd(g *globals) *cobra.Command {
	var (
		since, status string
		limit, offset int
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "list [DOMAIN] [--since 30d] [--status ok|warnings|invalid|conflict] [--limit 100]",
		Short: "List received DMARC aggregate reports, newest period first",
		Args:  nArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, err := optionalDomain(args)
			if err != nil {
				return err
			}
			from, err := parseSince(since, time.Now().UTC())
			if err != nil {
				return err
			}
			switch status {
			case "", store.ReportOK, store.ReportWarnings, store.ReportInvalid, store.DMARCConflict:
			default:
				return fmt.Errorf("--status %q: want ok, warnings, invalid or conflict", status)
			}
			if limit <= 0 || limit > 1000 {
				return fmt.Errorf("--limit %d: want 1 to 1000", limit)
			}
			if offset < 0 {
				return fmt.Errorf("--offset %d: want 0 or more", offset)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			filter := store.DMARCFilter{Domain: domain, Since: from, Status: status, Limit: limit, Offset: offset}
			rs, err := s.st.DMARCReports(cmd.Context(), filter)
			if err != nil {
				return err
			}
			total, err := s.st.CountDMARCReports(cmd.Context(), filter)
			if err != nil {
				return err
			}
			if asJSON {
				out := api.DMARCReportList{Reports: make([]api.DMARCReport, 0, len(rs)), Total: total}
				for _, r := range rs {
					out.Reports = append(out.Reports, api.DMARCReportOf(r))
				}
				return printJSON(g.stdout, out)
			}
			if len(rs) == 0 {
				fmt.Fprintln(g.stdout, "no reports")
				return nil
			}
			rows := [][]string{{"ID", "PERIOD START", "ORGANIZATION", "DOMAIN", "RECORDS", "MESSAGES", "STATUS", "SOURCE"}}
			for _, r := range rs {
				start := "-"
				if !r.StartTime.IsZero() {
					start = r.StartTime.Format("2006-01-02 15:04")
				}
				dom := dash(r.Domain)
				if !r.Hosted && r.Domain != "" {
					dom += " (not hosted)"
				}
				st := r.Status
				switch {
				case r.ConflictOf != 0:
					st = fmt.Sprintf("conflict (of %d)", r.ConflictOf)
				case r.Status == store.ReportWarnings:
					st = fmt.Sprintf("warnings (%d)", len(r.Warnings))
				}
				rows = append(rows, []string{strconv.FormatInt(r.ID, 10), start, dash(r.OrgName), dom,
					strconv.FormatInt(r.Records, 10), strconv.FormatInt(r.Messages, 10), st, r.Source})
			}
			if err := table(g.stdout, rows); err != nil {
				return err
			}
			if int64(offset+len(rs)) < total {
				fmt.Fprintf(g.stdout, "%d of %d reports; more with --offset %d\n", len(rs), total, offset+len(rs))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only reports whose period ends after this (30d, a date); default everything")
	f.StringVar(&status, "status", "", "only reports with this status: ok, warnings, invalid, or conflict (kept aside)")
	f.IntVar(&limit, "limit", 100, "at most this many reports (1 to 1000)")
	f.IntVar(&offset, "offset", 0, "skip this many reports")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDMARCShowCmd(g *globals) *cobra.Command {
	var asJSON, raw bool
	cmd := &cobra.Command{
		Use:   "show ID [--raw]",
		Short: "Show one DMARC aggregate report: metadata, policy, totals, warnings; --raw prints the bytes as received",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "report id", "moat reports dmarc list")
			if err != nil {
				return err
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			r, err := s.st.DMARCReportByID(cmd.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no DMARC report with id %d (see: moat reports dmarc list)", id)
			}
			if err != nil {
				return err
			}
			if raw {
				_, err := g.stdout.Write(r.Raw)
				return err
			}
			v := api.DMARCReportOf(r)
			if asJSON {
				return printJSON(g.stdout, v)
			}
			rows := [][]string{
				{"id:", strconv.FormatInt(v.ID, 10)},
				{"received:", v.ReceivedAt.Format(time.RFC3339) + " by " + v.Source + " (" + v.SourceDetail + ")"},
				{"status:", v.Status},
				{"organization:", dash(v.Organization)},
				{"report id:", dash(v.ReportID)},
				{"contact:", dash(v.Email)},
				{"domain:", dash(v.Domain)},
				{"records:", fmt.Sprintf("%d records, %d messages", v.Records, v.Messages)},
			}
			if !v.Start.IsZero() {
				rows = append(rows, []string{"period:", v.Start.Format(time.RFC3339) + " to " + v.End.Format(time.RFC3339)})
			}
			if p := v.Policy; p.P != "" {
				pol := "p=" + p.P
				for _, kv := range [][2]string{{"sp", p.SP}, {"np", p.NP}, {"adkim", p.ADKIM}, {"aspf", p.ASPF}, {"t", p.Testing}, {"fo", p.FO}} {
					if kv[1] != "" {
						pol += " " + kv[0] + "=" + kv[1]
					}
				}
				if p.Pct != nil {
					pol += fmt.Sprintf(" pct=%d", *p.Pct)
				}
				rows = append(rows, []string{"policy:", pol})
			}
			if v.ConflictOf != 0 {
				rows = append(rows, []string{"conflict:", fmt.Sprintf("kept aside: report %d has its organization, report id and period with another content", v.ConflictOf)})
			}
			if v.DKIM != "" {
				rows = append(rows, []string{"dkim:", v.DKIM})
			}
			if v.Error != "" {
				rows = append(rows, []string{"error:", v.Error})
			}
			if err := table(g.stdout, rows); err != nil {
				return err
			}
			if len(v.Warnings) > 0 {
				fmt.Fprintln(g.stdout, "\nwarnings (deviations from RFC 7489 and RFC 9990 that were accepted):")
				for _, w := range v.Warnings {
					fmt.Fprintln(g.stdout, "  "+w)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the report exactly as received (may be gzip or zip)")
	return cmd
}
