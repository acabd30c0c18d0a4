package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

func newReportsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reports",
		Short: "Read received reports; delete old ones",
	}
	tls := &cobra.Command{
		Use:   "tlsrpt",
		Short: "TLS-RPT reports (RFC 8460): summaries, lists, single reports",
	}
	tls.AddCommand(newTLSRPTSummaryCmd(g), newTLSRPTListCmd(g), newTLSRPTShowCmd(g))
	cmd.AddCommand(tls, newDMARCReportsCmd(g), newPruneCmd(g))
	attachDMARCSenders(g, cmd)
	return cmd
}

// parseSince reads "30d", "12h", "2w" or a date ("2026-11-01") into the
// start of a period ending now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if u, ok := unit[s[len(s)-1]]; ok {
		n, err := strconv.Atoi(s[:len(s)-1])
		if err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * u), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a period such as 30d, 2w or 12h, or a date such as 2026-11-01", s)
}

func optionalDomain(args []string) (string, error) {
	if len(args) == 0 {
		return "", nil
	}
	return hosting.LookupName(args[0])
}

func newTLSRPTSummaryCmd(g *globals) *cobra.Command {
	var (
		since, by string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "summary [DOMAIN] [--since 30d] [--by result|source|mx|day|domain]",
		Short: "Sessions per result type, sending source, receiving MX or day; and whether a testing domain is ready to enforce",
		Long: `Summarize the TLS sessions that senders reported, from the daily rollups (it
never scans raw reports). Without DOMAIN, all domains. --by chooses the rows:
result (per result type, successes included), source (per sending organization
and sending MTA IP), mx (per receiving MX), day, or domain. For a hosted domain
in testing mode it also says whether it is ready to move to enforce.

Totals add up each policy's session counts as the reports give them; a sender
that applies two policies (sts and tlsa) to the same session counts it under
both.`,
		Args: nArgs(0, 1),
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
			switch by {
			case tlsrptstats.ByNone, tlsrptstats.ByResult, tlsrptstats.BySource, tlsrptstats.ByMX, tlsrptstats.ByDay, tlsrptstats.ByDomain:
			default:
				return fmt.Errorf("--by %q: want result, source, mx, day or domain", by)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			out, err := api.Summarize(ctx, s.st, tlsrptstats.Query{Domain: domain, Since: from, By: by}, now)
			if err != nil {
				return err
			}
			sum, verdict := out.Summary, out.ReadyToEnforce
			if asJSON {
				return printJSON(g.stdout, out)
			}
			printSummary(g, sum, domain)
			if verdict != nil {
				word := "not yet"
				if verdict.Ready {
					word = "yes"
				}
				fmt.Fprintf(g.stdout, "\nready to enforce: %s. %s\n", word, verdict.Reason)
				for _, h := range verdict.ByResult {
					fmt.Fprintf(g.stdout, "  %s: %d sessions from %d senders since %s. %s\n", h.ResultType, h.Sessions, h.Organizations, h.FirstDay.Format("2006-01-02"), h.Hint)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "30d", "period: 30d, 2w, 12h, a date (2026-11-01), or empty for everything")
	f.StringVar(&by, "by", "result", "rows: result, source, mx, day, domain, or empty for totals only")
	f.BoolVar(&asJSON, "json", false, "print JSON (total_successful_sessions, total_failed_sessions, rows)")
	return cmd
}

func printSummary(g *globals, sum *tlsrptstats.Summary, domain string) {
	what := "all domains"
	if domain != "" {
		what = domain
	}
	period := "all time"
	if !sum.Since.IsZero() {
		period = "since " + sum.Since.Format("2006-01-02")
	}
	total := sum.TotalSuccessful + sum.TotalFailed
	rate := 0.0
	if total > 0 {
		rate = float64(sum.TotalFailed) / float64(total) * 100
	}
	fmt.Fprintf(g.stdout, "TLS sessions reported for %s, %s: %d successful, %d failed (%.2f%%)\n", what, period, sum.TotalSuccessful, sum.TotalFailed, rate)
	if len(sum.Rows) == 0 {
		if total == 0 {
			fmt.Fprintln(g.stdout, "no reports in this period")
		}
		return
	}
	var header []string
	key := func(r tlsrptstats.Row) []string { return nil }
	switch sum.By {
	case tlsrptstats.ByResult:
		header = []string{"RESULT"}
		key = func(r tlsrptstats.Row) []string { return []string{r.ResultType} }
	case tlsrptstats.BySource:
		header = []string{"ORGANIZATION", "SENDING IP"}
		key = func(r tlsrptstats.Row) []string { return []string{r.Organization, dash(r.SendingIP)} }
	case tlsrptstats.ByMX:
		header = []string{"RECEIVING MX"}
		key = func(r tlsrptstats.Row) []string { return []string{dash(r.ReceivingMX)} }
	case tlsrptstats.ByDay:
		header = []string{"DAY"}
		key = func(r tlsrptstats.Row) []string { return []string{r.Day.Format("2006-01-02")} }
	case tlsrptstats.ByDomain:
		header = []string{"DOMAIN"}
		key = func(r tlsrptstats.Row) []string { return []string{r.Domain} }
	}
	rows := [][]string{append(header, "SUCCESSFUL", "FAILED", "FAILURE RATE", "FAILURES BY RESULT")}
	for _, r := range sum.Rows {
		var parts []string
		for _, f := range r.Failures {
			parts = append(parts, fmt.Sprintf("%s %d", f.ResultType, f.Sessions))
		}
		rows = append(rows, append(key(r), strconv.FormatInt(r.Successful, 10), strconv.FormatInt(r.Failed, 10),
			fmt.Sprintf("%.2f%%", r.FailureRate*100), dash(strings.Join(parts, ", "))))
	}
	fmt.Fprintln(g.stdout)
	_ = table(g.stdout, rows) // the terminal's write errors have nobody to go to
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newTLSRPTListCmd(g *globals) *cobra.Command {
	var (
		since, status string
		limit, offset int
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "list [DOMAIN] [--since 30d] [--status ok|warnings|invalid] [--limit 100]",
		Short: "List received TLS-RPT reports, newest period first",
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
			case "", store.ReportOK, store.ReportWarnings, store.ReportInvalid:
			default:
				return fmt.Errorf("--status %q: want ok, warnings or invalid", status)
			}
			if limit <= 0 || limit > 10000 {
				return fmt.Errorf("--limit %d: want 1 to 10000", limit)
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			filter := store.ReportFilter{Domain: domain, Since: from, Status: status, Limit: limit, Offset: offset}
			rs, err := s.st.TLSRPTReports(cmd.Context(), filter)
			if err != nil {
				return err
			}
			total, err := s.st.CountTLSRPTReports(cmd.Context(), filter)
			if err != nil {
				return err
			}
			if asJSON {
				out := api.ReportList{Reports: make([]api.Report, 0, len(rs)), Total: &total}
				for _, r := range rs {
					out.Reports = append(out.Reports, api.ReportOf(r))
				}
				return printJSON(g.stdout, out)
			}
			if len(rs) == 0 {
				fmt.Fprintln(g.stdout, "no reports")
				return nil
			}
			rows := [][]string{{"ID", "PERIOD START", "ORGANIZATION", "DOMAINS", "SUCCESSFUL", "FAILED", "STATUS", "SOURCE"}}
			for _, r := range rs {
				start := "-"
				if !r.StartTime.IsZero() {
					start = r.StartTime.Format("2006-01-02 15:04")
				}
				doms := strings.Join(r.Domains, ",")
				if !r.Hosted && doms != "" {
					doms += " (not hosted)"
				}
				st := r.Status
				if r.Status == store.ReportWarnings {
					st = fmt.Sprintf("warnings (%d)", len(r.Warnings))
				}
				rows = append(rows, []string{strconv.FormatInt(r.ID, 10), start, dash(r.OrganizationName), dash(doms),
					strconv.FormatInt(r.Successful, 10), strconv.FormatInt(r.Failed, 10), st, r.Source})
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
	f.StringVar(&status, "status", "", "only reports with this status: ok, warnings or invalid")
	f.IntVar(&limit, "limit", 100, "at most this many reports")
	f.IntVar(&offset, "offset", 0, "skip this many reports")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newTLSRPTShowCmd(g *globals) *cobra.Command {
	var asJSON, raw bool
	cmd := &cobra.Command{
		Use:   "show ID [--raw]",
		Short: "Show one report: metadata, warnings, the normalized report; --raw prints the bytes as received",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "report id", "moat reports tlsrpt list")
			if err != nil {
				return err
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			r, err := s.st.TLSRPTReportByID(cmd.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no TLS report with id %d (see: moat reports tlsrpt list)", id)
			}
			if err != nil {
				return err
			}
			if raw {
				if !r.RawPruned.IsZero() {
					return fmt.Errorf("the bytes of TLS report %d were deleted by retention (retention.raw) on %s; without --raw, what was parsed from them",
						id, r.RawPruned.Format(time.RFC3339))
				}
				_, err := g.stdout.Write(r.Raw)
				return err
			}
			if asJSON {
				return printJSON(g.stdout, api.ReportOf(r))
			}
			v := api.ReportOf(r)
			rows := [][]string{
				{"id:", strconv.FormatInt(v.ID, 10)},
				{"received:", v.ReceivedAt.Format(time.RFC3339) + " by " + v.Source + " (" + v.SourceDetail + ")"},
				{"status:", v.Status},
				{"organization:", dash(v.Organization)},
				{"report id:", dash(v.ReportID)},
				{"contact:", dash(v.Contact)},
				{"domains:", dash(strings.Join(v.Domains, ", "))},
				{"sessions:", fmt.Sprintf("%d successful, %d failed", v.Successful, v.Failed)},
			}
			if !v.Start.IsZero() {
				rows = append(rows, []string{"period:", v.Start.Format(time.RFC3339) + " to " + v.End.Format(time.RFC3339)})
			}
			if v.DKIM != "" {
				rows = append(rows, []string{"dkim:", v.DKIM})
			}
			if v.Error != "" {
				rows = append(rows, []string{"error:", v.Error})
			}
			if !r.RawPruned.IsZero() {
				rows = append(rows, []string{"raw bytes:", "deleted by retention on " + r.RawPruned.Format(time.RFC3339)})
			}
			if err := table(g.stdout, rows); err != nil {
				return err
			}
			if len(v.Warnings) > 0 {
				fmt.Fprintln(g.stdout, "\nwarnings (deviations from RFC 8460 that were accepted):")
				for _, w := range v.Warnings {
					fmt.Fprintln(g.stdout, "  "+w)
				}
			}
			if len(r.Normalized) > 0 {
				var buf bytes.Buffer
				if json.Indent(&buf, r.Normalized, "", "  ") == nil {
					fmt.Fprintln(g.stdout, "\nnormalized report:")
					fmt.Fprintln(g.stdout, buf.String())
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the report exactly as received (may be gzip)")
	return cmd
}

// parseID reads the ID argument of a show command: a positive number, else
// an error naming what it is and the command that lists them.
func parseID(arg, what, list string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive number (see %s)", what, arg, list)
	}
	return id, nil
}
