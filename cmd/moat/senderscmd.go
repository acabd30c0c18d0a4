package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/senders"
)

// The DMARC sender commands: `moat reports dmarc senders` and `moat
// reports dmarc impact` (package senders).

// newDMARCSendersCmds returns the sender commands; they belong under
// `moat reports dmarc`.
func newDMARCSendersCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{newDMARCSendersCmd(g), newDMARCImpactCmd(g)}
}

// attachDMARCSenders adds the sender commands under `reports dmarc`,
// making that command when no other file has made it yet.
func attachDMARCSenders(g *globals, reports *cobra.Command) {
	var dmarc *cobra.Command
	for _, c := range reports.Commands() {
		if c.Name() == "dmarc" {
			dmarc = c
		}
	}
	if dmarc == nil {
		dmarc = &cobra.Command{
			Use:   "dmarc",
			Short: "DMARC aggregate reports (RFC 7489, RFC 9990): senders and the impact of enforcement",
		}
		reports.AddCommand(dmarc)
	}
	dmarc.AddCommand(newDMARCSendersCmds(g)...)
}

// senderFlags are the flags both commands take.
type senderFlags struct {
	since, until, resolver string
	noDNS, asJSON          bool
}

func (f *senderFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.since, "since", "30d", "period: 30d, 2w, 12h, a date (2026-11-01), or empty for everything")
	fs.StringVar(&f.until, "until", "", "end of the period, excluded: a date (2026-12-01); empty for now")
	fs.StringVar(&f.resolver, "resolver", "", "recursive resolver host:port for reverse DNS and SPF (default: the system's)")
	fs.BoolVar(&f.noDNS, "no-dns", false, "ask DNS nothing: use only the reverse DNS and SPF results cached in the database")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
}

// open reads the flags and prepares an Analyzer over the session's store.
func (f *senderFlags) open(g *globals, cmd *cobra.Command, args []string) (*session, *senders.Analyzer, senders.Query, error) {
	domain, err := optionalDomain(args)
	if err != nil {
		return nil, nil, senders.Query{}, err
	}
	now := time.Now().UTC()
	q := senders.Query{Domain: domain}
	if q.Since, err = parseSince(f.since, now); err != nil {
		return nil, nil, q, err
	}
	if f.until != "" {
		t, err := time.Parse("2006-01-02", f.until)
		if err != nil {
			return nil, nil, q, fmt.Errorf("--until %q: want a date such as 2026-12-01", f.until)
		}
		q.Until = t
	}
	r, err := senderResolver(f.resolver)
	if err != nil {
		return nil, nil, q, err
	}
	cat, err := senders.Builtin()
	if err != nil {
		return nil, nil, q, err
	}
	s, err := g.open(cmd)
	if err != nil {
		return nil, nil, q, err
	}
	return s, senders.NewAnalyzer(s.st, s.st, r, cat, senders.Options{CachedOnly: f.noDNS}), q, nil
}

// senderResolver is the system resolver, or one sending every query to
// addr (host:port; port 53 when left out).
func senderResolver(addr string) (*net.Resolver, error) {
	if addr == "" {
		return &net.Resolver{}, nil
	}
	if _, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil || !strings.Contains(addr, ":") {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("--resolver %q: %w", addr, err)
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, nil
}

func newDMARCSendersCmd(g *globals) *cobra.Command {
	var (
		f       senderFlags
		onlyNew bool
	)
	cmd := &cobra.Command{
		Use:     "senders DOMAIN [--since 30d] [--until DATE] [--new] [--resolver ADDR] [--no-dns] [--json]",
		Aliases: []string{"sources"},
		Short:   "Who sends mail as DOMAIN: each source named and classified, with the fixes for the misconfigured ones",
		Long: `List the sources (sending IP addresses) of DOMAIN's DMARC aggregate reports over a
period, from the daily rollups (never raw reports). Each source gets its reverse
DNS (forward-confirmed, cached in the database), the sending service it belongs
to (by forward-confirmed reverse DNS, its own DKIM signing domain or its own
envelope-from domain, from Moat's catalogue), whether DOMAIN's own SPF record
authorizes it (evaluated once per day), and a class: compliant (DMARC passes),
forwarded (a forwarded, mailing_list or trusted_forwarder override, or DKIM
passing aligned while SPF fails), misconfigured (a known service or an
SPF-authorized source failing DMARC) or unknown. Misconfigured sources come with
the exact fix. --new lists only the sources first seen since --since.`,
		Args: nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, a, q, err := f.open(g, cmd, args)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			if onlyNew {
				l, err := a.NewSources(ctx, q)
				if err != nil {
					return err
				}
				if f.asJSON {
					return printJSON(g.stdout, map[string]any{"domain": q.Domain, "since": q.Since, "sources": l})
				}
				fmt.Fprintf(g.stdout, "New sources of %s since %s: %d\n\n", q.Domain, dayText(q.Since), len(l))
				return printSources(g, l, true)
			}
			rep, err := a.Senders(ctx, q)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(g.stdout, rep)
			}
			return printSenders(g, rep)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&onlyNew, "new", false, "only the sources first seen since --since")
	return cmd
}

func newDMARCImpactCmd(g *globals) *cobra.Command {
	var (
		f       senderFlags
		pol     senders.Policy
		testing bool
	)
	cmd := &cobra.Command{
		Use:   "impact DOMAIN [--policy reject|quarantine] [--pct 100] [--testing] [--since 30d] [--until DATE] [--resolver ADDR] [--no-dns] [--json]",
		Short: "What p=quarantine or p=reject would block: messages and sources by class and service, and the fixes",
		Long: `Compute, from the daily rollups of DOMAIN's DMARC aggregate reports, what an
enforcing policy would have done over the period: the messages failing DMARC that
receivers would reject or quarantine, grouped by class (misconfigured, unknown,
forwarded) and sending service, per source, and the exact fix for each
misconfigured sender. --pct applies RFC 7489's pct (the rest gets the level
below); --testing applies RFC 9989's t=y (receivers apply one level below:
reject as quarantine, quarantine as none). Forwarded mail is counted apart:
receivers may accept it by local policy, and its senders cannot fix it.`,
		Args: nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pol.Testing = testing
			if pol.Pct == 0 {
				// RFC 9989 removed pct; its pct=0 became t=y.
				return fmt.Errorf("--pct 0: the policy would apply to no message; RFC 9989 replaced pct=0 with t=y: use --testing")
			}
			if _, err := senders.ComputeImpact("", nil, pol); err != nil {
				return fmt.Errorf("--policy %q --pct %d: %w", pol.P, pol.Pct, err)
			}
			s, a, q, err := f.open(g, cmd, args)
			if err != nil {
				return err
			}
			defer s.close()
			im, err := a.Impact(cmd.Context(), q, pol)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(g.stdout, im)
			}
			return printImpact(g, im)
		},
	}
	f.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&pol.P, "policy", "reject", "the policy to assess: reject or quarantine")
	fs.IntVar(&pol.Pct, "pct", 100, "RFC 7489 pct: the share of failing messages the policy applies to (0 to 100)")
	fs.BoolVar(&testing, "testing", false, "RFC 9989 t=y: receivers apply the policy one level below")
	return cmd
}

func dayText(t time.Time) string {
	if t.IsZero() {
		return "the beginning"
	}
	return t.UTC().Format("2006-01-02")
}

// num writes n with thousands separators.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + num(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func percent(part, whole int64) string {
	if whole == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 1, 64) + "%"
}

func printSenders(g *globals, rep *senders.Report) error {
	fmt.Fprintf(g.stdout, "DMARC senders of %s since %s", rep.Domain, dayText(rep.Since))
	if p := rep.Published; p != nil {
		fmt.Fprintf(g.stdout, " (published policy p=%s", p.P)
		if p.Pct >= 0 && p.Pct != 100 {
			fmt.Fprintf(g.stdout, " pct=%d", p.Pct)
		}
		if p.Testing == "y" {
			fmt.Fprint(g.stdout, " t=y")
		}
		fmt.Fprintf(g.stdout, ", as %s reported it)", dash(p.Reporter))
	}
	fmt.Fprintf(g.stdout, "\n%s messages from %d sources, %s passed DMARC (%s): compliant %s, forwarded %s, misconfigured %s, unknown %s\n",
		num(rep.Messages), len(rep.Sources), num(rep.Passing), percent(rep.Passing, rep.Messages), num(rep.ByClass.Compliant),
		num(rep.ByClass.Forwarded), num(rep.ByClass.Misconfigured), num(rep.ByClass.Unknown))
	if len(rep.Sources) == 0 {
		return nil
	}
	fmt.Fprintln(g.stdout)
	rows := [][]string{{"SERVICE", "SOURCES", "MESSAGES", "DMARC PASS", "MISCONFIGURED", "UNKNOWN", "FORWARDED"}}
	for _, sv := range rep.Services {
		rows = append(rows, []string{sv.Name, strconv.Itoa(sv.Sources), num(sv.Messages), percent(sv.Passing, sv.Messages),
			num(sv.ByClass.Misconfigured), num(sv.ByClass.Unknown), num(sv.ByClass.Forwarded)})
	}
	if err := table(g.stdout, rows); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout)
	if err := printSources(g, rep.Sources, false); err != nil {
		return err
	}
	printFixes(g, rep.Fixes)
	return nil
}

// maxListed bounds the sources a text listing shows (--json has all).
const maxListed = 50

func printSources(g *globals, l []*senders.Source, first bool) error {
	head := []string{"SOURCE", "REVERSE DNS", "SERVICE", "SPF", "CLASS", "MESSAGES", "DMARC PASS"}
	if first {
		head = append(head, "FIRST SEEN")
	}
	rows := [][]string{head}
	for i, s := range l {
		if i == maxListed {
			fmt.Fprintf(g.stdout, "(the first %d of %d sources; --json lists all)\n", maxListed, len(l))
			break
		}
		ptr := s.PTR
		switch {
		case ptr == "":
			ptr = "(" + dash(s.PTRError) + ")"
		case !s.PTRConfirmed:
			ptr += " (unconfirmed)"
		}
		svc := "-"
		if s.Service != nil {
			svc = s.Service.Name + " (by " + s.ServiceBy + ")"
		}
		spf := dash(s.SPF)
		row := []string{s.IP, ptr, svc, spf, string(s.Class), num(s.Messages), percent(s.Passing, s.Messages)}
		if first {
			row = append(row, dayText(s.FirstSeen))
		}
		rows = append(rows, row)
	}
	return table(g.stdout, rows)
}

func printFixes(g *globals, fixes []senders.Fix) {
	if len(fixes) == 0 {
		return
	}
	fmt.Fprintf(g.stdout, "\nFixes for the misconfigured senders:\n")
	for _, f := range fixes {
		src := f.Sources
		more := ""
		if len(src) > 5 {
			src, more = src[:5], fmt.Sprintf(" and %d more", len(f.Sources)-5)
		}
		fmt.Fprintf(g.stdout, "  - %s\n    (%s failing messages from %s%s)\n", f.Text, num(f.Messages), strings.Join(src, ", "), more)
	}
}

func printImpact(g *globals, im *senders.Impact) error {
	pol := "p=" + im.Policy.P
	if im.Policy.Pct != 100 {
		pol += fmt.Sprintf(" pct=%d", im.Policy.Pct)
	}
	if im.Policy.Testing {
		pol += " t=y"
	}
	fmt.Fprintf(g.stdout, "Impact of %s on %s since %s (receivers would apply %s to failing mail)\n", pol, im.Domain, dayText(im.Since), im.Applied)
	fmt.Fprintf(g.stdout, "%s messages, %s failing DMARC (%s): %s would be rejected, %s quarantined\n",
		num(im.Messages), num(im.Failing), percent(im.Failing, im.Messages), num(im.Rejected), num(im.Quarantined))
	if im.Forwarded > 0 {
		fmt.Fprintf(g.stdout, "of which forwarded: %s (receivers may accept it by local policy; its senders cannot fix it)\n", num(im.Forwarded))
	}
	if len(im.Groups) == 0 {
		return nil
	}
	fmt.Fprintln(g.stdout)
	rows := [][]string{{"CLASS", "SERVICE", "SOURCES", "FAILING", "REJECTED", "QUARANTINED"}}
	for _, gr := range im.Groups {
		rows = append(rows, []string{string(gr.Class), dash(gr.ServiceName), strconv.Itoa(gr.Sources), num(gr.Failing), num(gr.Rejected), num(gr.Quarantined)})
	}
	if err := table(g.stdout, rows); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout)
	rows = [][]string{{"SOURCE", "REVERSE DNS", "SERVICE", "CLASS", "FAILING", "REJECTED", "QUARANTINED"}}
	for i, s := range im.Sources {
		if i == maxListed {
			fmt.Fprintf(g.stdout, "(the first %d of %d sources; --json lists all)\n", maxListed, len(im.Sources))
			break
		}
		rows = append(rows, []string{s.IP, dash(s.PTR), dash(s.Service), string(s.Class), num(s.Failing.Total()), num(s.Rejected), num(s.Quarantined)})
	}
	if err := table(g.stdout, rows); err != nil {
		return err
	}
	printFixes(g, im.Fixes)
	return nil
}
