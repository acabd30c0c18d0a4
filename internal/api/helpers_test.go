package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
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
	"github.com/moatmail/moat/internal/store/pgtest"
	"github.com/moatmail/moat/internal/tlsrpt"
	"github.com/moatmail/moat/internal/web"
)

// TestMain stops the throwaway PostgreSQL server, if a test started one.
func TestMain(m *testing.M) { pgtest.Main(m) }

// stores are the databases the store-backed tests run on: SQLite in a
// temporary directory, and PostgreSQL (skipped, saying why, when it is not
// installed).
func stores() []struct {
	name string
	opts func(t *testing.T) store.Options
} {
	return []struct {
		name string
		opts func(t *testing.T) store.Options
	}{
		{"sqlite", func(t *testing.T) store.Options { return store.Options{DataDir: t.TempDir()} }},
		{"postgres", func(t *testing.T) store.Options { return store.Options{URL: pgtest.NewDatabase(t)} }},
	}
}

// zone is what the test DNS server answers: the service zone's names the
// delegation of dom-a.example points to, and dom-a.example's own records.
const zone = `
$ORIGIN .
mta-sts.dom-a.example. 300 IN CNAME mta-sts.moat.test.
_mta-sts.dom-a.example. 300 IN CNAME dom-a.example._mta-sts.moat.test.
_smtp._tls.dom-a.example. 300 IN TXT "v=TLSRPTv1; rua=mailto:someone@dom-a.example"
mta-sts.moat.test. 300 IN A 192.0.2.1
dom-a.example. 300 IN TXT "v=spf1 -all"
`

// env is the API served the way moat serve serves it: package web's
// handler (sessions, tokens, cross-origin protection) with the API
// mounted, over real HTTP on 127.0.0.1, on a fresh store.
type env struct {
	t   testing.TB
	st  store.Store
	url string
	op  store.Tenant // the operator's view, for fixtures and snapshots
	dns *dnstest.Server

	// deps are the API's dependencies, for the exported helpers.
	deps api.Deps

	// spec validates every answer against the OpenAPI document; seen
	// records the (route, status) pairs validated.
	spec *spec
}

// hostingSettings are the shared settings of the hosted domains.
func hostingSettings() hosting.Settings {
	return hosting.Settings{Zone: "moat.test", PolicyHost: "mta-sts.moat.test", RUA: []string{"mailto:tlsrpt@moat.test"}}
}

// newEnv starts the API on a fresh store of opts.
func newEnv(t *testing.T, opts store.Options) *env {
	t.Helper()
	return newEnvWith(t, opts, nil)
}

// newEnvWith is newEnv with the API's dependencies changed by change.
func newEnvWith(t *testing.T, opts store.Options, change func(*api.Deps)) *env {
	t.Helper()
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, log, opts)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	dns := dnstest.Start(t, zone, nil)
	hosted := func(d string) bool {
		_, err := st.Domain(context.Background(), d)
		return err == nil
	}
	ing := intake.NewIngester(log, st, hosted, intake.IngestOpts{})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingester: %v", err)
		}
	})
	checker := check.New(check.Options{
		Resolver: dns.Resolver(), DNSAddr: dns.Addr, Timeout: 10 * time.Second, StepTimeout: 2 * time.Second,
		SMTPPort: 1, HTTPSPort: 1, // nothing listens there: probes fail at once
	})
	deps := api.Deps{
		Log: log, Store: st, Hosting: hostingSettings(), Resolver: hosting.DNSResolver{Addr: dns.Addr, Timeout: 2 * time.Second},
		Checker: checker, Password: auth.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16},
		BaseURL: "https://app.moat.test", MaxUpload: 64 << 10, Ingester: ing,
	}
	if change != nil {
		change(&deps)
	}
	cfg := config.Default()
	cfg.Dev = true
	w, err := web.New(log, &cfg, st, web.Options{API: api.New(deps), Password: deps.Password})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, st: st, url: srv.URL, op: st.Scoped(store.Scope{Operator: true}), dns: dns, deps: deps}
	e.spec = loadSpec(t, e)
	return e
}

// cred is how a request authenticates: a bearer token, a session cookie,
// or nothing.
type cred struct {
	name   string
	bearer string
	cookie string
}

// req is one request to the API.
type req struct {
	method, path string
	body         []byte
	ctype        string
	hdr          map[string]string // more request headers
}

func get(path string) req    { return req{method: "GET", path: path} }
func del(path string) req    { return req{method: "DELETE", path: path} }
func post(path string) req   { return req{method: "POST", path: path} }
func (r req) String() string { return r.method + " " + r.path + " " + string(r.body) }

// jsonReq is a request with v as its JSON body.
func jsonReq(method, path string, v any) req {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return req{method: method, path: path, body: b, ctype: "application/json"}
}

// resp is an answer.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the answer's body into a generic value.
func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("answer is not a JSON object: %v\n%s", err, r.body)
	}
	return v
}

// do sends r as c and validates the answer against the OpenAPI document.
func (e *env) do(t testing.TB, c cred, r req) resp {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	hr, err := http.NewRequestWithContext(context.Background(), r.method, e.url+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	if c.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: "moat_session", Value: c.cookie})
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", r, err)
	}
	out := resp{status: res.StatusCode, header: res.Header, body: b}
	if err := e.spec.validate(hr, out); err != nil {
		t.Errorf("%s as %s: answer %d does not match the OpenAPI document: %v\n%s", r, c.name, out.status, err, b)
	}
	return out
}

// must sends r and fails unless the answer has status want.
func (e *env) must(t testing.TB, c cred, r req, want int) resp {
	t.Helper()
	res := e.do(t, c, r)
	if res.status != want {
		t.Fatalf("%s as %s: status %d, want %d\n%s", r, c.name, res.status, want, res.body)
	}
	return res
}

// org creates an organization (under parent, 0 for none).
func (e *env) org(t testing.TB, name string, parent int64) *store.Org {
	t.Helper()
	o := &store.Org{Name: name, DisplayName: strings.ToUpper(name), ParentID: parent}
	if err := e.st.CreateOrg(t.Context(), o); err != nil {
		t.Fatalf("CreateOrg %s: %v", name, err)
	}
	return o
}

// user creates a user, member of org with role, and a session of it in
// org.
func (e *env) user(t testing.TB, email string, org *store.Org, role string) (cred, *store.User) {
	t.Helper()
	ctx := t.Context()
	u := &store.User{Email: email, PasswordHash: "$argon2id$unused"}
	if err := e.st.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser %s: %v", email, err)
	}
	if org != nil && role != "" {
		if err := e.st.SetMembership(ctx, u.ID, org.ID, role); err != nil {
			t.Fatal(err)
		}
	}
	return e.session(t, u, org), u
}

// operator creates an operator user and signs it in.
func (e *env) operator(t testing.TB) cred {
	t.Helper()
	u := &store.User{Email: "operator@moat.test", PasswordHash: "$argon2id$unused", Operator: true}
	if err := e.st.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return e.session(t, u, nil)
}

// now is the present, in UTC.
func (e *env) now() time.Time { return time.Now().UTC() }

// session signs u in, acting in org.
func (e *env) session(t testing.TB, u *store.User, org *store.Org) cred {
	t.Helper()
	secret, hash, err := auth.NewSecret(auth.KindSession)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	s := &store.Session{ID: hash, UserID: u.ID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour)}
	if org != nil {
		s.OrgID = org.ID
	}
	if err := e.st.CreateSession(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	name := u.Email
	if org != nil {
		name += " in " + org.Name
	}
	return cred{name: name, cookie: secret}
}

// token creates an API token of org.
func (e *env) token(t testing.TB, org *store.Org, name, scope string) (cred, *store.Token) {
	t.Helper()
	secret, hash, err := auth.NewSecret(auth.KindToken)
	if err != nil {
		t.Fatal(err)
	}
	tk := &store.Token{OrgID: org.ID, Name: name, Scope: scope, Hash: hash, Prefix: secret[:13]}
	if err := e.op.CreateToken(t.Context(), tk); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	return cred{name: "token " + name, bearer: secret}, tk
}

// domain hosts name in org.
func (e *env) domain(t testing.TB, org *store.Org, name string) *store.Domain {
	t.Helper()
	d, err := hosting.New(e.op, hostingSettings(), nil).Add(t.Context(), name,
		hosting.Spec{Org: org.ID, Mode: "testing", MX: []string{"mx." + name}})
	if err != nil {
		t.Fatalf("hosting %s: %v", name, err)
	}
	return d
}

// reportJSON is a TLS-RPT report from reporter about domain, of the day
// before now.
func reportJSON(reporter, reportID, domain string, ok, failed int) []byte {
	start := time.Now().UTC().Add(-24 * time.Hour).Truncate(24 * time.Hour)
	return fmt.Appendf(nil, `{"organization-name":%q,"date-range":{"start-datetime":%q,"end-datetime":%q},
"contact-info":"tlsrpt@%s.test","report-id":%q,"policies":[{"policy":{"policy-type":"sts",
"policy-string":["version: STSv1","mode: testing","mx: mx.%s","max_age: 604800"],"policy-domain":%q,"mx-host":["mx.%s"]},
"summary":{"total-successful-session-count":%d,"total-failure-session-count":%d},
"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.7","receiving-mx-hostname":"mx.%s","failed-session-count":%d}]}]}`,
		reporter, start.Format(time.RFC3339), start.Add(24*time.Hour-time.Second).Format(time.RFC3339), reporter, reportID,
		domain, domain, domain, ok, failed, domain, failed)
}

// sharedReportJSON is a report with a policy for each of two domains.
func sharedReportJSON(reporter, reportID, d1, d2 string) []byte {
	one, two := reportJSON(reporter, reportID, d1, 7, 1), reportJSON(reporter, reportID, d2, 70, 10)
	const key = `"policies":[`
	pol2 := two[bytes.Index(two, []byte(key))+len(key) : len(two)-len("]}")]
	return slices.Concat(one[:len(one)-len("]}")], []byte(","), pol2, []byte("]}"))
}

// report stores a report about domain, as the intake would.
func (e *env) report(t testing.TB, reporter, reportID, domain string) int64 {
	t.Helper()
	return e.rawReport(t, reportJSON(reporter, reportID, domain, 90, 10))
}

// rawReport stores a report, as the intake would.
func (e *env) rawReport(t testing.TB, raw []byte) int64 {
	t.Helper()
	rep, _, err := tlsrpt.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	row := intake.StoredReport(raw, rep, time.Now(), intake.SourceImport, "fixture", func(string) bool { return true })
	res, err := e.st.InsertTLSRPT(t.Context(), []*store.TLSRPTReport{row})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].ID
}

// dmarcXML is a DMARC aggregate report (RFC 7489 appendix C) from
// reporter about domain, of the day before now: two records of count
// messages each.
func dmarcXML(reporter, reportID, domain string, count int) []byte {
	start := time.Now().UTC().Add(-24 * time.Hour).Truncate(24 * time.Hour)
	rec := func(ip string) string {
		return fmt.Sprintf(`<record><row><source_ip>%s</source_ip><count>%d</count><policy_evaluated><disposition>none</disposition>`+
			`<dkim>pass</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>%s</header_from></identifiers>`+
			`<auth_results><dkim><domain>%s</domain><selector>s1</selector><result>pass</result></dkim>`+
			`<spf><domain>%s</domain><result>fail</result></spf></auth_results></record>`, ip, count, domain, domain, domain)
	}
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<feedback><report_metadata><org_name>%s</org_name><email>dmarc@%s.test</email><report_id>%s</report_id>
<date_range><begin>%d</begin><end>%d</end></date_range></report_metadata>
<policy_published><domain>%s</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct></policy_published>
%s%s</feedback>
`, reporter, reporter, reportID, start.Unix(), start.Add(24*time.Hour-time.Second).Unix(), domain, rec("192.0.2.1"), rec("192.0.2.2"))
}

// dmarcReport stores a DMARC aggregate report, as the intake would.
func (e *env) dmarcReport(t testing.TB, raw []byte) int64 {
	t.Helper()
	res, err := e.deps.Ingester.SubmitDMARC(t.Context(), intake.Submission{Source: intake.SourceImport, SourceDetail: "fixture", Data: raw})
	if err != nil || res.Status != store.ReportOK {
		t.Fatalf("DMARC fixture: %+v, %v", res, err)
	}
	return res.ID
}

// check runs and stores a check of domain for org.
func (e *env) check(t testing.TB, org *store.Org, domain string) int64 {
	t.Helper()
	_, id, err := api.RunCheck(t.Context(), e.deps, e.op, org.ID, domain)
	if err != nil {
		t.Fatalf("RunCheck %s: %v", domain, err)
	}
	return id
}

// invitation stores an open invitation to org.
func (e *env) invitation(t testing.TB, org *store.Org, email, role string) int64 {
	t.Helper()
	_, hash, err := auth.NewSecret(auth.KindInvitation)
	if err != nil {
		t.Fatal(err)
	}
	inv := &store.Invitation{OrgID: org.ID, Email: email, Role: role, Hash: hash, ExpiresAt: time.Now().Add(time.Hour)}
	if err := e.op.CreateInvitation(t.Context(), inv); err != nil {
		t.Fatal(err)
	}
	return inv.ID
}

// snapshot writes down everything of every organization that an API call
// could change, for comparisons before and after. Sessions and the last
// use of tokens change with every request and are left out.
func (e *env) snapshot(t testing.TB) string {
	t.Helper()
	ctx := t.Context()
	var b strings.Builder
	orgs, err := e.op.Orgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs {
		fmt.Fprintf(&b, "org %d %s %q parent %d\n", o.ID, o.Name, o.DisplayName, o.ParentID)
		ms, err := e.op.Members(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			fmt.Fprintf(&b, "  member %d %s %s\n", m.UserID, m.Email, m.Role)
		}
		ts, err := e.op.Tokens(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			fmt.Fprintf(&b, "  token %d %s %s revoked %v\n", tk.ID, tk.Name, tk.Scope, tk.RevokedAt)
		}
		invs, err := e.op.Invitations(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, inv := range invs {
			fmt.Fprintf(&b, "  invitation %d %s %s\n", inv.ID, inv.Email, inv.Role)
		}
	}
	rows, err := e.op.Overview(ctx, store.OverviewQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rows {
		fmt.Fprintf(&b, "domain %s org %d %s %v %d %v policy %s v%d updated %v verified %v\n", d.Name, d.OrgID, d.Mode, d.MX,
			d.MaxAge, d.RUA, d.PolicyID, d.Version, d.UpdatedAt, d.VerifiedAt)
		cs, err := e.op.Checks(ctx, d.Name, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			fmt.Fprintf(&b, "  check %d org %d\n", c.ID, c.OrgID)
		}
	}
	n, err := e.op.CountTLSRPTReports(ctx, store.ReportFilter{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "reports %d\n", n)
	n, err = e.op.CountDMARCReports(ctx, store.DMARCFilter{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "dmarc reports %d\n", n)
	users, err := e.st.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "users %d\n", len(users))
	return b.String()
}
