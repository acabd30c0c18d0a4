package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
)

// The CLI acts as the operator: it sees and changes every organization.

// orgNameRE is what an organization's name may be: a slug.
var orgNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// checkOrgName says why name cannot name an organization, or nil.
func checkOrgName(name string) error {
	if !orgNameRE.MatchString(name) {
		return fmt.Errorf("invalid organization name %q: want 1 to 63 lower-case letters, digits and inner hyphens, such as acme or acme-eu", name)
	}
	return nil
}

// lookupOrg returns the organization named name, or an error for people.
func lookupOrg(ctx context.Context, st store.Store, name string) (*store.Org, error) {
	o, err := st.OrgByName(ctx, strings.ToLower(strings.TrimSpace(name)))
	if errors.Is(err, store.ErrNotFound) {
		return nil, &hintedError{err: fmt.Errorf("no organization %q", name), hint: "moat orgs list"}
	}
	return o, err
}

// operator is the principal of the CLI acting in org.
func operator(st store.Store, org *store.Org) *auth.Principal {
	return &auth.Principal{Org: org, Role: store.RoleOwner, Tenant: st.Scoped(store.Scope{Operator: true})}
}

type orgView struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name"`
	Parent      string    `json:"parent,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

func newOrgsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "orgs", Short: "Manage organizations (tenants)"}
	var parent, display string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create NAME [--parent NAME] [--display-name TEXT]",
		Short: "Create an organization; with --parent, a customer of that MSP",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.ToLower(strings.TrimSpace(args[0]))
			if err := checkOrgName(name); err != nil {
				return err
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			o := &store.Org{Name: name, DisplayName: display}
			if o.DisplayName == "" {
				o.DisplayName = name
			}
			if parent != "" {
				p, err := lookupOrg(ctx, s.st, parent)
				if err != nil {
					return err
				}
				if p.ParentID != 0 {
					return fmt.Errorf("organization %q is itself a customer: a customer has no customers", parent)
				}
				o.ParentID = p.ID
			}
			if err := s.st.CreateOrg(ctx, o); errors.Is(err, store.ErrExists) {
				return &hintedError{err: fmt.Errorf("organization %q exists already", name), hint: "moat orgs list"}
			} else if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, orgView{ID: o.ID, Name: o.Name, DisplayName: o.DisplayName, Parent: parent, CreatedAt: o.CreatedAt})
			}
			fmt.Fprintf(g.stdout, "created organization %s (id %d)\n", o.Name, o.ID)
			return nil
		},
	}
	create.Flags().StringVar(&parent, "parent", "", "the MSP organization this one is a customer of")
	create.Flags().StringVar(&display, "display-name", "", "name shown in the dashboard (default: the name)")
	create.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List organizations",
		Args:  nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			orgs, err := s.st.Orgs(cmd.Context())
			if err != nil {
				return err
			}
			names := map[int64]string{}
			for _, o := range orgs {
				names[o.ID] = o.Name
			}
			views := make([]orgView, 0, len(orgs))
			rows := [][]string{{"NAME", "DISPLAY NAME", "PARENT", "CREATED"}}
			for _, o := range orgs {
				views = append(views, orgView{ID: o.ID, Name: o.Name, DisplayName: o.DisplayName, Parent: names[o.ParentID], CreatedAt: o.CreatedAt})
				rows = append(rows, []string{o.Name, o.DisplayName, dash(names[o.ParentID]), o.CreatedAt.Format("2006-01-02")})
			}
			if listJSON {
				return printJSON(g.stdout, views)
			}
			if len(orgs) == 0 {
				fmt.Fprintln(g.stdout, "no organizations; create one with: moat orgs create NAME")
				return nil
			}
			return table(g.stdout, rows)
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	cmd.AddCommand(create, list, newOrgSetCmd(g))
	return cmd
}

// readPassword returns the password of --password-file (its first line),
// or a generated one (printed by the caller) when file is "".
func readPassword(file string) (pw string, generated bool, err error) {
	if file == "" {
		return auth.GeneratePassword(), true, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", false, fmt.Errorf("--password-file: %w", err)
	}
	pw, _, _ = strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if err := auth.CheckPassword(pw); err != nil {
		return "", false, fmt.Errorf("--password-file %s: %s", file, strings.TrimPrefix(err.Error(), "auth: "))
	}
	return pw, false, nil
}

type userView struct {
	ID        int64             `json:"id"`
	Email     string            `json:"email"`
	Operator  bool              `json:"operator"`
	Orgs      map[string]string `json:"orgs"` // organization name → role
	CreatedAt time.Time         `json:"created_at"`
	Password  string            `json:"password,omitempty"` // generated: shown once
}

func newUsersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage users who sign in to the dashboard"}
	var (
		org, role, pwFile string
		operatorUser      bool
		asJSON            bool
	)
	create := &cobra.Command{
		Use:   "create EMAIL --org NAME --role owner|admin|viewer [--password-file F]",
		Short: "Create a user in an organization (created when absent); prints a generated password when none is given",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			email := strings.ToLower(strings.TrimSpace(args[0]))
			if at := strings.LastIndexByte(email, '@'); at <= 0 || at == len(email)-1 || strings.ContainsAny(email, " <>,;") {
				return fmt.Errorf("invalid email address %q", args[0])
			}
			switch role {
			case store.RoleOwner, store.RoleAdmin, store.RoleViewer:
			default:
				return fmt.Errorf("--role %q: want owner, admin or viewer", role)
			}
			if org == "" {
				return errors.New("--org: say which organization the user belongs to (it is created when absent)")
			}
			orgName := strings.ToLower(strings.TrimSpace(org))
			if err := checkOrgName(orgName); err != nil {
				return err
			}
			pw, generated, err := readPassword(pwFile)
			if err != nil {
				return err
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			orgID, err := ensureOrg(ctx, s.st, orgName, orgName)
			if err != nil {
				return err
			}
			hash, err := auth.HashPassword(pw, auth.DefaultParams)
			if err != nil {
				return err
			}
			u := &store.User{Email: email, PasswordHash: hash, Operator: operatorUser}
			if err := s.st.CreateUser(ctx, u); errors.Is(err, store.ErrExists) {
				return &hintedError{err: fmt.Errorf("user %q exists already", email), hint: "moat users list"}
			} else if err != nil {
				return err
			}
			if err := s.st.SetMembership(ctx, u.ID, orgID, role); err != nil {
				return err
			}
			v := userView{ID: u.ID, Email: u.Email, Operator: u.Operator, Orgs: map[string]string{orgName: role}, CreatedAt: u.CreatedAt}
			if generated {
				v.Password = pw
			}
			if asJSON {
				return printJSON(g.stdout, v)
			}
			fmt.Fprintf(g.stdout, "created user %s, %s of %s\n", email, role, orgName)
			if generated {
				fmt.Fprintf(g.stdout, "password (shown once): %s\n", pw)
			}
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&org, "org", "", "organization (created when absent)")
	f.StringVar(&role, "role", store.RoleViewer, "owner, admin or viewer")
	f.StringVar(&pwFile, "password-file", "", "read the password from this file's first line instead of generating one")
	f.BoolVar(&operatorUser, "operator", false, "the user also sees every organization, as the CLI does")
	f.BoolVar(&asJSON, "json", false, "print JSON")

	var listOrg string
	var listJSON bool
	list := &cobra.Command{
		Use:   "list [--org NAME]",
		Short: "List users and their organizations",
		Args:  nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			users, err := s.st.Users(ctx)
			if err != nil {
				return err
			}
			if listOrg != "" {
				if _, err := lookupOrg(ctx, s.st, listOrg); err != nil {
					return err
				}
			}
			views := []userView{}
			rows := [][]string{{"EMAIL", "ORGANIZATIONS", "OPERATOR", "CREATED"}}
			for _, u := range users {
				ms, err := s.st.Memberships(ctx, u.ID)
				if err != nil {
					return err
				}
				v := userView{ID: u.ID, Email: u.Email, Operator: u.Operator, Orgs: map[string]string{}, CreatedAt: u.CreatedAt}
				var orgs []string
				for _, m := range ms {
					v.Orgs[m.OrgName] = m.Role
					orgs = append(orgs, m.OrgName+" ("+m.Role+")")
				}
				if listOrg != "" && v.Orgs[strings.ToLower(listOrg)] == "" {
					continue
				}
				views = append(views, v)
				op := ""
				if u.Operator {
					op = "yes"
				}
				rows = append(rows, []string{u.Email, dash(strings.Join(orgs, ", ")), dash(op), u.CreatedAt.Format("2006-01-02")})
			}
			if listJSON {
				return printJSON(g.stdout, views)
			}
			if len(views) == 0 {
				fmt.Fprintln(g.stdout, "no users; create one with: moat users create EMAIL --org NAME --role owner")
				return nil
			}
			return table(g.stdout, rows)
		},
	}
	list.Flags().StringVar(&listOrg, "org", "", "only the members of this organization")
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	rm := &cobra.Command{
		Use:   "rm EMAIL",
		Short: "Delete a user: its memberships and sessions end",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			u, err := lookupUser(cmd.Context(), s.st, args[0])
			if err != nil {
				return err
			}
			if err := s.st.DeleteUser(cmd.Context(), u.ID); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deleted user %s\n", u.Email)
			return nil
		},
	}

	var resetFile string
	var resetJSON bool
	reset := &cobra.Command{
		Use:   "reset-password EMAIL [--password-file F]",
		Short: "Set a user's password (generated and printed when no file is given); its sessions end",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, generated, err := readPassword(resetFile)
			if err != nil {
				return err
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			u, err := lookupUser(cmd.Context(), s.st, args[0])
			if err != nil {
				return err
			}
			hash, err := auth.HashPassword(pw, auth.DefaultParams)
			if err != nil {
				return err
			}
			if err := s.st.SetPassword(cmd.Context(), u.ID, hash, ""); err != nil {
				return err
			}
			if resetJSON {
				v := map[string]any{"email": u.Email, "sessions_ended": true}
				if generated {
					v["password"] = pw
				}
				return printJSON(g.stdout, v)
			}
			fmt.Fprintf(g.stdout, "password of %s changed; its sessions are signed out\n", u.Email)
			if generated {
				fmt.Fprintf(g.stdout, "password (shown once): %s\n", pw)
			}
			return nil
		},
	}
	reset.Flags().StringVar(&resetFile, "password-file", "", "read the password from this file's first line instead of generating one")
	reset.Flags().BoolVar(&resetJSON, "json", false, "print JSON")
	cmd.AddCommand(create, list, rm, reset)
	return cmd
}

func lookupUser(ctx context.Context, st store.Store, email string) (*store.User, error) {
	u, err := st.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if errors.Is(err, store.ErrNotFound) {
		return nil, &hintedError{err: fmt.Errorf("no user %q", email), hint: "moat users list"}
	}
	return u, err
}

func newTokensCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Manage the API tokens of organizations"}
	var org, scope, name string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --org NAME --scope read|write [--name N]",
		Short: "Create an API token; it is printed once, as the last word of the last line",
		Args:  nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if org == "" {
				return errors.New("--org: say which organization the token acts for")
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			o, err := lookupOrg(ctx, s.st, org)
			if err != nil {
				return err
			}
			if name == "" {
				name = "created by moat tokens create on " + time.Now().UTC().Format("2006-01-02")
			}
			t, err := api.CreateToken(ctx, operator(s.st, o), o.ID, name, scope)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, t)
			}
			fmt.Fprintf(g.stdout, "created %s token %d (%s) for %s; it is shown once:\n%s\n", t.Scope, t.ID, t.Name, o.Name, t.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&org, "org", "", "organization the token acts for")
	create.Flags().StringVar(&scope, "scope", store.ScopeRead, "read or write")
	create.Flags().StringVar(&name, "name", "", "what the token is for")
	create.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var listOrg string
	var listJSON bool
	list := &cobra.Command{
		Use:   "list --org NAME",
		Short: "List an organization's tokens, revoked ones included",
		Args:  nArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if listOrg == "" {
				return errors.New("--org: say whose tokens to list")
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			o, err := lookupOrg(ctx, s.st, listOrg)
			if err != nil {
				return err
			}
			ts, err := s.st.Scoped(store.Scope{Operator: true}).Tokens(ctx, o.ID)
			if err != nil {
				return err
			}
			views := make([]api.Token, 0, len(ts))
			rows := [][]string{{"ID", "NAME", "SCOPE", "PREFIX", "CREATED", "LAST USED", "REVOKED"}}
			for _, t := range ts {
				views = append(views, api.TokenOf(t))
				rows = append(rows, []string{strconv.FormatInt(t.ID, 10), t.Name, t.Scope, t.Prefix + "…",
					t.CreatedAt.Format("2006-01-02 15:04"), dateOrDash(t.LastUsed), dateOrDash(t.RevokedAt)})
			}
			if listJSON {
				return printJSON(g.stdout, views)
			}
			if len(ts) == 0 {
				fmt.Fprintf(g.stdout, "%s has no tokens; create one with: moat tokens create --org %s --scope read\n", o.Name, o.Name)
				return nil
			}
			return table(g.stdout, rows)
		},
	}
	list.Flags().StringVar(&listOrg, "org", "", "organization")
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	var revokeOrg string
	revoke := &cobra.Command{
		Use:   "revoke ID --org NAME",
		Short: "Revoke a token at once",
		Args:  nArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return &hintedError{err: fmt.Errorf("token id %q: want the number moat tokens list shows", args[0]), hint: "moat tokens list --org NAME"}
			}
			if revokeOrg == "" {
				return errors.New("--org: say whose token it is")
			}
			s, err := g.open(cmd)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := cmd.Context()
			o, err := lookupOrg(ctx, s.st, revokeOrg)
			if err != nil {
				return err
			}
			// Scoped to the organization named: a token of another one is
			// not found.
			err = s.st.Scoped(store.Scope{Orgs: []int64{o.ID}}).RevokeToken(ctx, id, time.Now().UTC())
			if errors.Is(err, store.ErrNotFound) {
				return &hintedError{err: fmt.Errorf("%s has no active token %d", o.Name, id), hint: "moat tokens list --org " + o.Name}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "revoked token %d of %s\n", id, o.Name)
			return nil
		},
	}
	revoke.Flags().StringVar(&revokeOrg, "org", "", "organization the token belongs to")
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func dateOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
