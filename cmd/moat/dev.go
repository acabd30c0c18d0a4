package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/seed"
	"github.com/moatmail/moat/internal/server"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/web"
)

// The demo of `moat serve --dev`.
const (
	// DemoDomain is the domain --dev hosts so there is something to query
	// at once.
	DemoDomain = "demo.moat.test"
	// DemoOrg is the organization of the demo domains and user.
	DemoOrg = "demo"
	// DemoUser signs in to the dashboard; its password is printed.
	DemoUser = "admin@demo.moat.test"
	// devPasswordFile keeps the demo user's password in the data
	// directory, so that every start prints the same one.
	devPasswordFile = "dev-password"
	// demoDays of TLS reports for the second demo domain.
	demoDays = 60
)

// demoAccount is what --dev prints to sign in with.
type demoAccount struct{ email, password string }

// ensureDemo makes the demo of --dev, once: the organization "demo", its
// owner DemoUser (password in the data directory), the demo domain, and a
// second domain with 60 days of TLS and DMARC reports from several senders, some
// failing. Later starts add the days that passed since.
func ensureDemo(ctx context.Context, log *slog.Logger, st store.Store, c *config.Config) (*demoAccount, error) {
	set := server.HostingSettings(c)
	org, err := ensureOrg(ctx, st, DemoOrg, "Demo")
	if err != nil {
		return nil, err
	}
	if _, err := st.Domain(ctx, DemoDomain); errors.Is(err, store.ErrNotFound) {
		_, err = hosting.New(st, set, nil).Add(ctx, DemoDomain, hosting.Spec{Org: org, MX: []string{"mx1." + DemoDomain, "*.mx." + DemoDomain}})
		if err != nil && !errors.Is(err, store.ErrExists) { // another process may have added it meanwhile
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	acct, err := ensureDemoUser(ctx, st, c, org)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	stats, err := seed.Run(ctx, st, set, seed.Options{Org: org, Domains: 1, Days: demoDays, DMARCDays: demoDays, Seed: 1, Broken: true})
	if err != nil {
		return nil, fmt.Errorf("demo reports: %w", err)
	}
	if stats.Reports+stats.DMARCReports > 0 {
		log.Info("demo reports stored", "tls_reports", stats.Reports, "sessions", stats.Sessions, "failed", stats.Failed,
			"dmarc_reports", stats.DMARCReports, "dmarc_messages", stats.DMARCMessages,
			"duration", time.Since(start).Round(time.Millisecond))
	}
	return acct, nil
}

// ensureDemoUser creates the demo user with a generated password kept in
// the data directory, or reads that password back.
func ensureDemoUser(ctx context.Context, st store.Store, c *config.Config, org int64) (*demoAccount, error) {
	file := c.DataPath(devPasswordFile)
	b, ferr := os.ReadFile(file)
	pw := strings.TrimSpace(string(b))
	u, err := st.UserByEmail(ctx, DemoUser)
	switch {
	case err == nil && ferr == nil && pw != "":
		if ok, _, _ := auth.VerifyPassword(u.PasswordHash, pw, auth.DefaultParams); ok {
			return &demoAccount{email: DemoUser, password: pw}, nil
		}
		fallthrough // changed in the dashboard: set a known one again
	case err == nil:
		pw = auth.GeneratePassword()
		hash, err := auth.HashPassword(pw, auth.DefaultParams)
		if err != nil {
			return nil, err
		}
		if err := st.SetPassword(ctx, u.ID, hash, ""); err != nil {
			return nil, err
		}
	case errors.Is(err, store.ErrNotFound):
		pw = auth.GeneratePassword()
		hash, err := auth.HashPassword(pw, auth.DefaultParams)
		if err != nil {
			return nil, err
		}
		u = &store.User{Email: DemoUser, PasswordHash: hash}
		if err := st.CreateUser(ctx, u); err != nil {
			return nil, err
		}
		if err := st.SetMembership(ctx, u.ID, org, store.RoleOwner); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("demo password: %w", err)
	}
	return &demoAccount{email: DemoUser, password: pw}, nil
}

// webPart makes the dashboard and API part of `moat serve`.
func webPart(log *slog.Logger, c *config.Config, st store.Store) server.PartFunc {
	return func(env *server.Env) (server.Part, error) {
		resolver, err := hosting.SystemResolver()
		if err != nil {
			log.Warn("no system resolver: delegation checks in the dashboard will fail", "err", err)
		}
		base := "https://" + c.Web.Host
		if c.Dev && c.Web.Listen != "" {
			base = "http://" + c.Web.Listen
		}
		deps := api.Deps{
			Log:      log,
			Store:    st,
			Hosting:  env.Settings,
			Resolver: hosting.DNSResolver{Addr: resolver},
			Checker: check.New(check.Options{Hosted: func(ctx context.Context, domain string) (bool, error) {
				_, err := st.Domain(ctx, domain)
				if errors.Is(err, store.ErrNotFound) {
					return false, nil
				}
				return err == nil, err
			}}),
			Password:   auth.DefaultParams,
			BaseURL:    base,
			Ingester:   env.Ingester,
			MaxUpload:  c.Intake.MaxReportSize,
			CheckLimit: api.NewCheckLimiter(),
		}
		return web.New(log, c, st, web.Options{API: api.New(deps), Pages: web.Pages(deps)})
	}
}
