package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/config"
	"github.com/moatmail/moat/internal/dnstest"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
)

// testNow is the clock of every test: reports are made for the days
// before it.
var testNow = time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)

// testParams make password hashes cheap in tests.
var testParams = auth.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

const testPassword = "correct horse battery"

// testHosting are the hosting settings of the tests.
var testHosting = hosting.Settings{Zone: "sts.moat.test", PolicyHost: "mta-sts.moat.test", RUA: []string{"mailto:tlsrpt@moat.test"}}

// env is a dashboard over a fresh SQLite store, with a DNS server as its
// resolver.
type env struct {
	t    testing.TB
	st   store.Store
	h    http.Handler
	srv  *Server
	dns  *dnstest.Server
	deps api.Deps
	ing  *intake.Ingester

	orgs  map[string]*store.Org  // by name
	users map[string]*store.User // by email
	// cookies of signed-in sessions, by email
	cookies map[string]string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, slog.New(slog.DiscardHandler), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{t: t, st: st, orgs: map[string]*store.Org{}, users: map[string]*store.User{}, cookies: map[string]string{}}
	e.dns = dnstest.Start(t, "", nil)
	now := func() time.Time { return testNow }
	hosted := func(d string) bool {
		_, err := st.Domain(context.Background(), d)
		return err == nil
	}
	e.ing = intake.NewIngester(slog.New(slog.DiscardHandler), st, hosted, intake.IngestOpts{})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.ing.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingester: %v", err)
		}
	})
	e.deps = api.Deps{
		Log: slog.New(slog.DiscardHandler), Store: st, Hosting: testHosting,
		Resolver: hosting.DNSResolver{Addr: e.dns.Addr, Timeout: 2 * time.Second},
		Checker:  check.New(check.Options{Resolver: e.dns.Resolver(), Timeout: 5 * time.Second, Now: now}),
		Password: testParams, BaseURL: "http://moat.test", Now: now, Ingester: e.ing, MaxUpload: 256 << 10,
	}
	c := config.DevDefault()
	c.Web.Listen = ""
	c.Intake.DMARCAddresses = []string{"dmarc@reports." + testHosting.Zone}
	e.srv, err = New(slog.New(slog.DiscardHandler), &c, st, Options{Now: now, Password: testParams, Pages: Pages(e.deps), API: api.New(e.deps)})
	if err != nil {
		t.Fatal(err)
	}
	e.h = e.srv.Handler()
	return e
}

// org creates an organization, a customer of parent when parent is not "".
func (e *env) org(name, parent string) *store.Org {
	e.t.Helper()
	o := &store.Org{Name: name, DisplayName: strings.ToUpper(name[:1]) + name[1:] + " Inc."}
	if parent != "" {
		o.ParentID = e.orgs[parent].ID
	}
	if err := e.st.CreateOrg(context.Background(), o); err != nil {
		e.t.Fatal(err)
	}
	e.orgs[name] = o
	return o
}

// user creates a user with testPassword, member of org with role, and a
// session in org.
func (e *env) user(email, org, role string) *store.User {
	e.t.Helper()
	ctx := context.Background()
	u := e.users[email]
	if u == nil {
		h, err := auth.HashPassword(testPassword, testParams)
		if err != nil {
			e.t.Fatal(err)
		}
		u = &store.User{Email: email, PasswordHash: h}
		if err := e.st.CreateUser(ctx, u); err != nil {
			e.t.Fatal(err)
		}
		e.users[email] = u
	}
	if err := e.st.SetMembership(ctx, u.ID, e.orgs[org].ID, role); err != nil {
		e.t.Fatal(err)
	}
	e.signIn(email, org)
	return u
}

// signIn creates a session of the user acting in org.
func (e *env) signIn(email, org string) {
	e.t.Helper()
	e.signInAs(email, email, org)
}

// signInAs creates a session of the user acting in org, kept under key.
func (e *env) signInAs(key, email, org string) {
	e.t.Helper()
	secret, hash, err := auth.NewSecret(auth.KindSession)
	if err != nil {
		e.t.Fatal(err)
	}
	s := &store.Session{ID: hash, UserID: e.users[email].ID, OrgID: e.orgs[org].ID, CreatedAt: testNow, LastSeen: testNow, ExpiresAt: testNow.Add(time.Hour)}
	if err := e.st.CreateSession(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
	e.cookies[key] = secret
}

// domain hosts a domain for org.
func (e *env) domain(name, org string) *store.Domain {
	e.t.Helper()
	svc := hosting.New(e.st, testHosting, func() time.Time { return testNow.Add(-20 * 24 * time.Hour) })
	d, err := svc.Add(context.Background(), name, hosting.Spec{Org: e.orgs[org].ID, MX: []string{"mx1." + name, "mx2." + name}})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// reports stores daily reports of two senders for domain over the days
// before testNow, with failures of result on failDays of them.
func (e *env) reports(domain string, days int, result string, failDays int) []int64 {
	e.t.Helper()
	return e.reportRange(domain, days, 1, result, failDays)
}

// reportsBetween stores daily reports without failures for the days from
// oldest to newest days before testNow.
func (e *env) reportsBetween(domain string, oldest, newest int) []int64 {
	e.t.Helper()
	return e.reportRange(domain, oldest, newest, "", 0)
}

func (e *env) reportRange(domain string, oldest, newest int, result string, failDays int) []int64 {
	e.t.Helper()
	var batch []*store.TLSRPTReport
	for i := oldest; i >= newest; i-- {
		start := time.Date(testNow.Year(), testNow.Month(), testNow.Day()-i, 0, 0, 0, 0, time.UTC)
		for j, org := range []string{"Google LLC", "Microsoft Corporation"} {
			r := &tlsrpt.Report{
				OrganizationName: org, ContactInfo: "tlsrpt@" + strings.ToLower(strings.Fields(org)[0]) + ".example",
				ReportID:  fmt.Sprintf("%s-%s-%d", domain, start.Format("20060102"), j),
				DateRange: tlsrpt.DateRange{Start: start, End: start.Add(24*time.Hour - time.Second)},
				Policies: []tlsrpt.PolicyResult{{
					Policy:  tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: domain, MXHost: []string{"mx1." + domain}},
					Summary: tlsrpt.Summary{Successful: int64(100 + 10*j)},
				}},
			}
			if i <= failDays && result != "" {
				r.Policies[0].Summary.Failure = 3
				r.Policies[0].FailureDetails = []tlsrpt.FailureDetail{{
					ResultType: result, SendingMTAIP: fmt.Sprintf("192.0.2.%d", 10+j), ReceivingMXHostname: "mx2." + domain,
					FailedSessionCount: 3, FailureReasonCode: "X509_V_ERR_CERT_HAS_EXPIRED", AdditionalInformation: "seen by " + org,
				}}
			}
			raw := []byte(fmt.Sprintf(`{"organization-name":%q,"report-id":%q}`, org, r.ReportID))
			batch = append(batch, intake.StoredReport(raw, r, start.Add(25*time.Hour), "https", "198.51.100.7", func(string) bool { return true }))
		}
	}
	res, err := e.st.InsertTLSRPT(context.Background(), batch)
	if err != nil {
		e.t.Fatal(err)
	}
	ids := make([]int64, len(res))
	for i, r := range res {
		ids[i] = r.ID
	}
	return ids
}

// do sends a request as the signed-in user email ("" for nobody) and
// returns the response with its body read.
func (e *env) do(email, method, target string, form url.Values, header ...string) *resp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	if email != "" {
		r.AddCookie(&http.Cookie{Name: "moat_session", Value: e.cookies[email]})
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return &resp{Code: w.Code, Body: w.Body.String(), Header: w.Header()}
}

type resp struct {
	Code   int
	Body   string
	Header http.Header
}

func (r *resp) has(t testing.TB, what ...string) {
	t.Helper()
	for _, s := range what {
		if !strings.Contains(r.Body, s) {
			t.Errorf("response (%d) lacks %q", r.Code, s)
		}
	}
}

func (r *resp) lacks(t testing.TB, what ...string) {
	t.Helper()
	for _, s := range what {
		if strings.Contains(r.Body, s) {
			t.Errorf("response (%d) has %q", r.Code, s)
		}
	}
}

// snapshotOrg describes what the store holds of an organization: its
// branding, members, domains with their versions, tokens, invitations and
// checks. Equal snapshots mean nothing changed.
func snapshotOrg(t testing.TB, e *env, name string) string {
	t.Helper()
	ctx := context.Background()
	op := e.st.Scoped(store.Scope{Operator: true})
	o, err := e.st.OrgByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "org %s %q %q %q\n", o.Name, o.DisplayName, o.Accent, o.LogoType)
	ms, _ := op.Members(ctx, o.ID)
	for _, m := range ms {
		fmt.Fprintf(&b, "member %s %s\n", m.Email, m.Role)
	}
	ds, _ := e.st.Domains(ctx)
	for _, d := range ds {
		if d.OrgID != o.ID {
			continue
		}
		fmt.Fprintf(&b, "domain %s %s %v %d %s v%d\n", d.Name, d.Mode, d.MX, d.MaxAge, d.PolicyID, d.Version)
		cs, _ := op.Checks(ctx, d.Name, 1000)
		n := 0
		for _, c := range cs {
			if c.OrgID == o.ID {
				n++
			}
		}
		fmt.Fprintf(&b, "checks %d\n", n)
	}
	ts, _ := op.Tokens(ctx, o.ID)
	for _, k := range ts {
		fmt.Fprintf(&b, "token %d %s %s revoked=%v\n", k.ID, k.Name, k.Scope, !k.RevokedAt.IsZero())
	}
	is, _ := op.Invitations(ctx, o.ID)
	for _, i := range is {
		fmt.Fprintf(&b, "invitation %d %s %s\n", i.ID, i.Email, i.Role)
	}
	all, _ := e.st.Orgs(ctx)
	for _, c := range all {
		if c.ParentID == o.ID {
			fmt.Fprintf(&b, "customer %s\n", c.Name)
		}
	}
	return b.String()
}
