package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

func newDomainsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "Manage hosted MTA-STS domains",
		Long: `Manage the domains whose MTA-STS policy Moat hosts. Every command works on the
same data directory or database as a running "moat serve", which serves a
change within seconds.`,
	}
	cmd.AddCommand(
		newDomainsAddCmd(g), newDomainsSetCmd(g), newDomainsListCmd(g), newDomainsShowCmd(g),
		newDomainsRmCmd(g), newDomainsRecordsCmd(g), newDomainsVerifyCmd(g),
	)
	return cmd
}

// domainView is the JSON form of a hosted domain.
type domainView struct {
	Domain    string        `json:"domain"`
	Mode      string        `json:"mode"`
	MX        []string      `json:"mx"`
	MaxAge    int64         `json:"max_age"`
	RUA       []string      `json:"rua"`
	PolicyID  string        `json:"policy_id"`
	Version   int64         `json:"version"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	Policy    string        `json:"policy,omitempty"`
	Versions  []versionView `json:"versions,omitempty"`
}

type versionView struct {
	Version   int64     `json:"version"`
	PolicyID  string    `json:"policy_id"`
	Mode      string    `json:"mode"`
	MX        []string  `json:"mx"`
	MaxAge    int64     `json:"max_age"`
	Policy    string    `json:"policy"`
	CreatedAt time.Time `json:"created_at"`
}

func viewOf(d *store.Domain) domainView {
	return domainView{
		Domain: d.Name, Mode: d.Mode, MX: nonNil(d.MX), MaxAge: d.MaxAge, RUA: nonNil(d.RUA),
		PolicyID: d.PolicyID, Version: d.Version, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// printDomain prints one domain for people.
func printDomain(g *globals, d *store.Domain) error {
	rua := strings.Join(d.RUA, ", ")
	if rua == "" {
		rua = "-"
	}
	return table(g.stdout, [][]string{
		{"domain:", d.Name},
		{"mode:", d.Mode},
		{"mx:", strings.Join(d.MX, ", ")},
		{"max_age:", strconv.FormatInt(d.MaxAge, 10)},
		{"extra rua:", rua},
		{"policy id:", fmt.Sprintf("%s (version %d)", d.PolicyID, d.Version)},
	})
}

func newDomainsAddCmd(g *globals) *cobra.Command {
	var (
		mx, rua []string
		mode    string
		orgName string
		maxAge  int64
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "add DOMAIN --mx PATTERN [--mx PATTERN ...] [--org NAME]",
		Short: "Host a domain's MTA-STS policy",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			org, err := hostingOrg(cmd.Context(), s.st, orgName)
			if err != nil {
				return err
			}
			d, err := s.host.Add(cmd.Context(), args[0], hosting.Spec{Org: org, Mode: mode, MX: mx, MaxAge: maxAge, RUA: rua})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, viewOf(d))
			}
			fmt.Fprintf(g.stdout, "added %s\n", d.Name)
			if err := printDomain(g, d); err != nil {
				return err
			}
			if s.cfg.Zone != "" {
				fmt.Fprintf(g.stdout, "\nPublish these records once in the zone of %s:\n", d.Name)
				for _, r := range s.host.Settings().Delegation(d.Name) {
					fmt.Fprintln(g.stdout, "  "+r.Zone())
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&mx, "mx", nil, "MX pattern (host name or *.suffix); repeat for several")
	f.StringVar(&mode, "mode", hosting.DefaultMode, "policy mode: testing, enforce or none")
	f.Int64Var(&maxAge, "max-age", hosting.DefaultMaxAge, "policy max_age in seconds (at most 31557600)")
	f.StringArrayVar(&rua, "rua", nil, "extra TLS-RPT report URI (mailto: or https:); repeat for several")
	f.StringVar(&orgName, "org", "", "organization that hosts the domain (default: the only one, or \"default\" when there is none)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// defaultOrg is the organization domains go to when there is no other.
const defaultOrg = "default"

// hostingOrg returns the organization that domains add hosts a domain
// for: the one named, or else the only one there is, or "default", created
// when there is none yet. With several and none named, it says to choose.
func hostingOrg(ctx context.Context, st store.Store, name string) (int64, error) {
	if name != "" {
		o, err := lookupOrg(ctx, st, name)
		if err != nil {
			return 0, err
		}
		return o.ID, nil
	}
	orgs, err := st.Orgs(ctx)
	if err != nil {
		return 0, err
	}
	switch len(orgs) {
	case 1:
		return orgs[0].ID, nil
	case 0:
		return ensureOrg(ctx, st, defaultOrg, "Default")
	}
	names := make([]string, len(orgs))
	for i, o := range orgs {
		names[i] = o.Name
	}
	return 0, fmt.Errorf("there are %d organizations (%s): choose one with --org NAME", len(orgs), strings.Join(names, ", "))
}

// ensureOrg returns the id of the organization name, creating it (with
// displayName) when absent, also when another process creates it at the
// same time.
func ensureOrg(ctx context.Context, st store.Store, name, displayName string) (int64, error) {
	o, err := st.OrgByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		o = &store.Org{Name: name, DisplayName: displayName}
		err = st.CreateOrg(ctx, o)
		if errors.Is(err, store.ErrExists) {
			o, err = st.OrgByName(ctx, name)
		}
	}
	if err != nil {
		return 0, err
	}
	return o.ID, nil
}

func newDomainsSetCmd(g *globals) *cobra.Command {
	var (
		mx, rua  []string
		mode     string
		maxAge   int64
		asJSON   bool
		clearRUA bool
	)
	cmd := &cobra.Command{
		Use:   "set DOMAIN [--mode MODE] [--mx PATTERN ...] [--max-age N] [--rua URI ...]",
		Short: "Change a hosted domain; a policy change gets a new id at once",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch hosting.Change
			fl := cmd.Flags()
			if fl.Changed("mode") {
				ch.Mode = &mode
			}
			if fl.Changed("mx") {
				ch.MX = mx
			}
			if fl.Changed("max-age") {
				ch.MaxAge = &maxAge
			}
			if fl.Changed("rua") || clearRUA {
				r := rua
				if clearRUA {
					r = []string{}
				}
				ch.RUA = &r
			}
			if ch.Mode == nil && ch.MX == nil && ch.MaxAge == nil && ch.RUA == nil {
				return errors.New("domains set: nothing to change: give --mode, --mx, --max-age, --rua or --clear-rua")
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			d, changed, err := s.host.Set(cmd.Context(), args[0], ch)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, struct {
					domainView
					PolicyChanged bool `json:"policy_changed"`
				}{viewOf(d), changed})
			}
			if changed {
				fmt.Fprintf(g.stdout, "updated %s: new policy id %s\n", d.Name, d.PolicyID)
			} else {
				fmt.Fprintf(g.stdout, "updated %s: served policy unchanged (id %s)\n", d.Name, d.PolicyID)
			}
			return printDomain(g, d)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&mx, "mx", nil, "MX pattern; replaces all patterns; repeat for several")
	f.StringVar(&mode, "mode", "", "policy mode: testing, enforce or none")
	f.Int64Var(&maxAge, "max-age", 0, "policy max_age in seconds (at most 31557600)")
	f.StringArrayVar(&rua, "rua", nil, "extra TLS-RPT report URI; replaces all extra URIs; repeat for several")
	f.BoolVar(&clearRUA, "clear-rua", false, "remove all extra TLS-RPT report URIs")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDomainsListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List hosted domains",
		Args:  nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ds, err := s.host.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]domainView, 0, len(ds))
				for _, d := range ds {
					out = append(out, viewOf(d))
				}
				return printJSON(g.stdout, out)
			}
			rows := [][]string{{"DOMAIN", "MODE", "MX", "MAX_AGE", "POLICY ID", "UPDATED"}}
			for _, d := range ds {
				rows = append(rows, []string{d.Name, d.Mode, strings.Join(d.MX, ","), strconv.FormatInt(d.MaxAge, 10), d.PolicyID, d.UpdatedAt.Format(time.RFC3339)})
			}
			if len(ds) == 0 {
				fmt.Fprintln(g.stdout, "no hosted domains; add one with: moat domains add DOMAIN --mx PATTERN")
				return nil
			}
			return table(g.stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDomainsShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show DOMAIN",
		Short: "Show a hosted domain: policy text, id and versions",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			d, vs, err := s.host.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			policy := ""
			if len(vs) > 0 {
				policy = vs[0].Policy
			}
			if asJSON {
				v := viewOf(d)
				v.Policy = policy
				for _, pv := range vs {
					v.Versions = append(v.Versions, versionView{Version: pv.Version, PolicyID: pv.PolicyID, Mode: pv.Mode, MX: nonNil(pv.MX), MaxAge: pv.MaxAge, Policy: pv.Policy, CreatedAt: pv.CreatedAt})
				}
				return printJSON(g.stdout, v)
			}
			if err := printDomain(g, d); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "\npolicy (https://mta-sts.%s/.well-known/mta-sts.txt):\n", d.Name)
			for _, line := range strings.Split(strings.TrimRight(policy, "\r\n"), "\n") {
				fmt.Fprintln(g.stdout, "  "+strings.TrimRight(line, "\r"))
			}
			fmt.Fprintln(g.stdout, "\nversions:")
			rows := [][]string{{"  VERSION", "POLICY ID", "MODE", "MX", "MAX_AGE", "CREATED"}}
			for _, pv := range vs {
				rows = append(rows, []string{"  " + strconv.FormatInt(pv.Version, 10), pv.PolicyID, pv.Mode, strings.Join(pv.MX, ","), strconv.FormatInt(pv.MaxAge, 10), pv.CreatedAt.Format(time.RFC3339)})
			}
			return table(g.stdout, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDomainsRmCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rm DOMAIN",
		Short: "Stop hosting a domain",
		Long: `Stop hosting a domain. Its records and policy disappear from Moat's answers at
once. Senders that cached the policy keep it until max_age runs out: to retire
MTA-STS safely, first "moat domains set DOMAIN --mode none", wait max_age, then
remove.`,
		Args: nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			name, err := hosting.LookupName(args[0])
			if err != nil {
				return err
			}
			if err := s.host.Remove(cmd.Context(), name); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"domain": name, "removed": true})
			}
			fmt.Fprintf(g.stdout, "removed %s\n", name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// needZone fails clearly when the service zone is not configured.
func needZone(s *session) error {
	if s.cfg.Zone == "" {
		return errors.New("the service zone is not configured: give --zone, MOAT_ZONE or zone: in the configuration file (the same as moat serve uses)")
	}
	return nil
}

func newDomainsRecordsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "records DOMAIN",
		Short: "Show the DNS records the domain owner publishes",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			if err := needZone(s); err != nil {
				return err
			}
			d, _, err := s.host.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			set := s.host.Settings()
			cnames, self := set.Delegation(d.Name), set.SelfPublished(d)
			if asJSON {
				return printJSON(g.stdout, map[string]any{"domain": d.Name, "cname": cnames, "self_published": self})
			}
			fmt.Fprintf(g.stdout, "Publish these three records once; Moat serves every later change:\n\n")
			for _, r := range cnames {
				fmt.Fprintln(g.stdout, "  "+r.Zone())
			}
			fmt.Fprintf(g.stdout, "\nOr, to publish the TXT records yourself (update _mta-sts on every policy change):\n\n")
			for _, r := range self {
				fmt.Fprintln(g.stdout, "  "+r.Zone())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDomainsVerifyCmd(g *globals) *cobra.Command {
	var (
		asJSON   bool
		resolver string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify DOMAIN [--resolver ADDR]",
		Short: "Check in DNS that the domain's three names are delegated correctly",
		Long: `Look the three names up in DNS (through a recursive resolver) and say, for
each, whether it is delegated correctly and, if not, the exact fix. Exit code 0
when all three are in order, 2 when one is not, 1 when the check could not run.`,
		Args: nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			if err := needZone(s); err != nil {
				return err
			}
			d, _, err := s.host.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if resolver == "" {
				if resolver, err = hosting.SystemResolver(); err != nil {
					return err
				}
			} else if !strings.Contains(resolver, ":") || strings.HasSuffix(resolver, "]") {
				resolver += ":53"
			}
			checks := s.host.Settings().Verify(cmd.Context(), hosting.DNSResolver{Addr: resolver, Timeout: timeout}, d)
			ok := true
			for _, c := range checks {
				ok = ok && c.OK()
			}
			if asJSON {
				if err := printJSON(g.stdout, map[string]any{"domain": d.Name, "resolver": resolver, "ok": ok, "checks": checks}); err != nil {
					return err
				}
			} else {
				for _, c := range checks {
					fmt.Fprintf(g.stdout, "%-10s %s\n", c.Status, c.Name)
					for _, f := range c.Found {
						fmt.Fprintf(g.stdout, "           found: %s\n", f)
					}
					if c.Detail != "" {
						fmt.Fprintf(g.stdout, "           %s\n", c.Detail)
					}
					if c.Fix != "" {
						fmt.Fprintf(g.stdout, "           fix: %s\n", c.Fix)
					}
				}
			}
			if !ok {
				return &exitErr{code: exitNotGreen, err: fmt.Errorf("%s is not delegated correctly", d.Name)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&resolver, "resolver", "", "recursive resolver host:port (default: the first of /etc/resolv.conf)")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "timeout per DNS query")
	return cmd
}
