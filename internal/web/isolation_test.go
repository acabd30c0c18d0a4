package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
)

// tenant is what one organization of the isolation test holds, and what
// an outsider must never see or touch.
type tenant struct {
	Org                                *store.Org
	Domain                             string
	Report, Check, Token, Invite, User int64
	Failure                            int64 // a DMARC failure report
	DMARC                              int64 // a DMARC aggregate report about Domain
}

// markers are strings only this tenant's pages contain: its names, and
// the reporter, report id and source address of its DMARC report.
func (v *tenant) markers() []string {
	return []string{v.Domain, v.Org.DisplayName, "/domains/" + v.Domain, "rid-" + v.Org.Name, "Reporter " + v.Org.Name, v.sourceIP()}
}

// sourceIP is the sending address of the tenant's DMARC report.
func (v *tenant) sourceIP() string { return "203.0.113." + itoa(v.Org.ID+100) }

// isoReq is one request an outsider makes with a tenant's names and ids.
type isoReq struct {
	method, path string
	form         url.Values
	// open: the page itself is the outsider's (a list, a form acting on
	// its own organization), so any answer is right as long as nothing of
	// the tenant shows; otherwise only 403 or 404 is.
	open  bool
	lacks []string // default: the tenant's markers
}

// isolationCases has an entry for every route of the dashboard: the
// requests an outsider makes with the tenant v's names and ids.
func isolationCases(v *tenant) map[string][]isoReq {
	id := itoa
	d := v.Domain
	policy := url.Values{"mode": {"none"}, "mx": {""}, "max_age": {"60"}, "confirm": {"yes"}}
	return map[string][]isoReq{
		"GET /{$}": {
			{method: "GET", path: "/", open: true},
			{method: "GET", path: "/?q=" + d, open: true, lacks: []string{"/domains/" + d, v.Org.DisplayName}},
			{method: "GET", path: "/?org=" + id(v.Org.ID)},
		},
		"GET /domains/new": {{method: "GET", path: "/domains/new", open: true}},
		"POST /domains/new": {
			{method: "POST", path: "/domains/new", form: url.Values{"name": {"fresh-" + d}, "mx": {"mx." + d}, "org": {id(v.Org.ID)}}},
			// The name is taken: the answer says so, and only that.
			{method: "POST", path: "/domains/new", form: url.Values{"name": {d}, "mx": {"mx." + d}}, open: true, lacks: []string{v.Org.DisplayName, "/domains/" + d}},
		},
		"GET /domains/{name}":                    {{method: "GET", path: "/domains/" + d}, {method: "GET", path: "/domains/" + strings.ToUpper(d)}},
		"POST /domains/{name}":                   {{method: "POST", path: "/domains/" + d, form: policy}},
		"POST /domains/{name}/mx":                {{method: "POST", path: "/domains/" + d + "/mx", form: policy}},
		"POST /domains/{name}/delete":            {{method: "POST", path: "/domains/" + d + "/delete", form: url.Values{"confirm": {d}}}},
		"GET /domains/{name}/setup":              {{method: "GET", path: "/domains/" + d + "/setup"}},
		"POST /domains/{name}/verify":            {{method: "POST", path: "/domains/" + d + "/verify", form: url.Values{}}},
		"GET /reports":                           {{method: "GET", path: "/reports?since=2026-01-01", open: true}, {method: "GET", path: "/reports?result=certificate-expired", open: true}},
		"GET /domains/{name}/reports":            {{method: "GET", path: "/domains/" + d + "/reports"}, {method: "GET", path: "/domains/" + d + "/reports?result=certificate-expired"}},
		"GET /reports/{id}":                      {{method: "GET", path: "/reports/" + id(v.Report)}},
		"GET /dmarc/failures":                    {{method: "GET", path: "/dmarc/failures", open: true}, {method: "GET", path: "/dmarc/failures?domain=" + d}},
		"GET /dmarc/failures/{id}":               {{method: "GET", path: "/dmarc/failures/" + id(v.Failure)}, {method: "GET", path: "/dmarc/failures/" + id(v.Failure) + "?unredacted=1"}},
		"GET /dmarc":                             {{method: "GET", path: "/dmarc", open: true}, {method: "GET", path: "/dmarc?since=365d", open: true}},
		"GET /domains/{name}/dmarc":              {{method: "GET", path: "/domains/" + d + "/dmarc"}, {method: "GET", path: "/domains/" + d + "/dmarc?class=unknown&all=1"}},
		"GET /domains/{name}/dmarc/impact":       {{method: "GET", path: "/domains/" + d + "/dmarc/impact?policy=reject&pct=100"}},
		"GET /dmarc/reports":                     {{method: "GET", path: "/dmarc/reports", open: true}, {method: "GET", path: "/dmarc/reports?domain=" + d, open: true, lacks: []string{"/domains/" + d, v.Org.DisplayName, "rid-" + v.Org.Name, v.sourceIP()}}},
		"GET /dmarc/reports/{id}":                {{method: "GET", path: "/dmarc/reports/" + id(v.DMARC)}},
		"POST /dmarc/upload":                     {{method: "POST", path: "/dmarc/upload", form: url.Values{}, open: true}},
		"GET /intake":                            {{method: "GET", path: "/intake", open: true}, {method: "GET", path: "/intake?outcome=stored&since=2026-01-01", open: true}},
		"GET /checks":                            {{method: "GET", path: "/checks", open: true}},
		"POST /checks":                           {{method: "POST", path: "/checks", form: url.Values{"domain": {d}}, open: true, lacks: []string{v.Org.DisplayName}}},
		"GET /checks/{id}":                       {{method: "GET", path: "/checks/" + id(v.Check)}},
		"GET /domains/{name}/checks":             {{method: "GET", path: "/domains/" + d + "/checks"}},
		"POST /domains/{name}/checks":            {{method: "POST", path: "/domains/" + d + "/checks", form: url.Values{}}},
		"GET /settings":                          {{method: "GET", path: "/settings", open: true}},
		"POST /settings/members/{user}":          {{method: "POST", path: "/settings/members/" + id(v.User), form: url.Values{"action": {"remove"}}}, {method: "POST", path: "/settings/members/" + id(v.User), form: url.Values{"action": {"role"}, "role": {"viewer"}}}},
		"POST /settings/invitations":             {{method: "POST", path: "/settings/invitations", form: url.Values{"email": {"someone@elsewhere.example"}, "role": {"viewer"}, "org": {id(v.Org.ID)}}, open: true}},
		"POST /settings/invitations/{id}/delete": {{method: "POST", path: "/settings/invitations/" + id(v.Invite) + "/delete", form: url.Values{}}},
		"POST /settings/tokens":                  {{method: "POST", path: "/settings/tokens", form: url.Values{"name": {"probe"}, "scope": {"write"}, "org": {id(v.Org.ID)}}, open: true}},
		"POST /settings/tokens/{id}/revoke":      {{method: "POST", path: "/settings/tokens/" + id(v.Token) + "/revoke", form: url.Values{}}},
		"POST /settings/branding":                {{method: "POST", path: "/settings/branding", form: url.Values{"display_name": {"Probe"}, "accent": {"#101010"}, "org": {id(v.Org.ID)}}, open: true}},
		"POST /settings/failure-key":             {{method: "POST", path: "/settings/failure-key", form: url.Values{"recipient": {""}, "org": {id(v.Org.ID)}}, open: true}},
		"POST /settings/customers":               {{method: "POST", path: "/settings/customers", form: url.Values{"name": {v.Org.Name}}, open: true, lacks: []string{v.Org.DisplayName}}},
	}
}

// TestTenantIsolation: organizations A and B, an MSP P with its customer
// C and an MSP Q with its customer D, users of every role. Every page and
// every form action of the dashboard, requested by a user with another
// tenant's names and ids, shows nothing of it and changes nothing.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.org("alpha", "")
	e.org("bravo", "")
	e.org("papa", "")
	e.org("charlie", "papa")
	e.org("quebec", "")
	e.org("delta", "quebec")
	op := e.st.Scoped(store.Scope{Operator: true})
	tenants := map[string]*tenant{}
	for _, name := range []string{"alpha", "bravo", "papa", "charlie", "quebec", "delta"} {
		v := &tenant{Org: e.orgs[name], Domain: name + "-mail.example"}
		for _, role := range []string{store.RoleOwner, store.RoleAdmin, store.RoleViewer} {
			u := e.user(role+"@"+name+".example", name, role)
			if role == store.RoleViewer {
				v.User = u.ID
			}
		}
		e.domain(v.Domain, name)
		v.Report = e.reports(v.Domain, 3, "certificate-expired", 1)[0]
		v.Failure = e.storeFailure(name, v.Domain)
		src := recSpoof
		src.ip = v.sourceIP()
		v.DMARC = e.submitDMARC(dmarcFeedback("Reporter "+name, "rid-"+name, v.Domain, 2, src, recCompliant)).ID
		c := &store.CheckRecord{OrgID: v.Org.ID, Domain: v.Domain, CheckedAt: testNow, Score: 80, Grade: "B", Report: []byte(`{"domain":"` + v.Domain + `"}`)}
		if err := op.InsertCheck(ctx, c); err != nil {
			t.Fatal(err)
		}
		v.Check = c.ID
		_, hash, _ := auth.NewSecret(auth.KindToken)
		tok := &store.Token{OrgID: v.Org.ID, Name: name + "-token", Scope: store.ScopeWrite, Hash: hash, Prefix: "moat_t_x", CreatedAt: testNow}
		if err := op.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		v.Token = tok.ID
		_, hash, _ = auth.NewSecret(auth.KindInvitation)
		inv := &store.Invitation{OrgID: v.Org.ID, Email: "invited@" + name + ".example", Role: store.RoleAdmin, Hash: hash, CreatedAt: testNow, ExpiresAt: testNow.Add(time.Hour)}
		if err := op.CreateInvitation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		v.Invite = inv.ID
		tenants[name] = v
	}
	// The MSP P's owner also acts inside its customer C, where P is out
	// of sight.
	e.signInAs("owner@papa.example@charlie", "owner@papa.example", "charlie")

	type actor struct {
		key     string   // the session's key in e.cookies
		role    string   // the effective role
		visible []string // the organizations it may see
		member  string   // an organization it may switch to, out of sight now
	}
	var actors []actor
	for _, name := range []string{"alpha", "bravo", "papa", "charlie", "quebec", "delta"} {
		for _, role := range []string{store.RoleOwner, store.RoleAdmin, store.RoleViewer} {
			vis := []string{name}
			if role != store.RoleViewer {
				for c, o := range e.orgs {
					if o.ParentID == e.orgs[name].ID {
						vis = append(vis, c)
					}
				}
			}
			actors = append(actors, actor{role + "@" + name + ".example", role, vis, ""})
		}
	}
	actors = append(actors, actor{"owner@papa.example@charlie", store.RoleOwner, []string{"charlie"}, "papa"})

	// The markers are on the tenant's own pages: their absence elsewhere
	// means something.
	for name, v := range tenants {
		me := "viewer@" + name + ".example"
		e.do(me, "GET", "/dmarc/reports", nil).has(t, "rid-"+name, "Reporter "+name)
		e.do(me, "GET", "/dmarc/reports/"+itoa(v.DMARC), nil).has(t, "rid-"+name)
		e.do(me, "GET", "/domains/"+v.Domain+"/dmarc", nil).has(t, v.sourceIP())
		e.do(me, "GET", "/domains/"+v.Domain+"/dmarc/impact", nil).has(t, v.sourceIP())
		e.do(me, "GET", "/dmarc", nil).has(t, "/domains/"+v.Domain+"/dmarc")
		e.do(me, "GET", "/intake?kind=dmarc", nil).has(t, "rid-"+name)
	}

	routes := (&pages{}).routes()
	cases := isolationCases(tenants["alpha"])
	for _, rt := range routes {
		if _, ok := cases[rt.pattern]; !ok {
			t.Errorf("route %q has no isolation case: add one to isolationCases", rt.pattern)
		}
	}
	if len(cases) != len(routes) {
		t.Errorf("%d isolation cases for %d routes: remove the cases of routes that are gone", len(cases), len(routes))
	}
	requests := 0
	for _, a := range actors {
		var victims []*tenant
		for name, v := range tenants {
			if !slices.Contains(a.visible, name) {
				victims = append(victims, v)
			}
		}
		before := map[string]string{}
		for _, v := range victims {
			before[v.Org.Name] = snapshotOrg(t, e, v.Org.Name)
		}
		for _, v := range victims {
			for _, rt := range routes {
				for _, rq := range isolationCases(v)[rt.pattern] {
					requests++
					r := e.do(a.key, rq.method, rq.path, rq.form)
					switch {
					case r.Code >= 500:
						t.Errorf("%s %s %s: %d", a.key, rq.method, rq.path, r.Code)
					case !rq.open && r.Code != http.StatusNotFound && r.Code != http.StatusForbidden:
						t.Errorf("%s %s %s (%s's): %d, want 404 or 403", a.key, rq.method, rq.path, v.Org.Name, r.Code)
					}
					lacks := rq.lacks
					if lacks == nil {
						lacks = v.markers()
					}
					for _, m := range lacks {
						if strings.Contains(r.Body, m) || strings.Contains(r.Header.Get("Location"), m) {
							t.Errorf("%s %s %s: the answer (%d) shows %s's %q", a.key, rq.method, rq.path, r.Code, v.Org.Name, m)
						}
					}
				}
			}
			// The session's own handlers: switching into the tenant, its
			// logo.
			if v.Org.Name == a.member {
				continue
			}
			if r := e.do(a.key, "POST", "/switch", url.Values{"org": {itoa(v.Org.ID)}}); r.Code != http.StatusNotFound {
				t.Errorf("%s switches into %s: %d", a.key, v.Org.Name, r.Code)
			}
			if r := e.do(a.key, "GET", "/logo/"+itoa(v.Org.ID), nil); r.Code != http.StatusNotFound {
				t.Errorf("%s gets the logo of %s: %d", a.key, v.Org.Name, r.Code)
			}
		}
		for _, v := range victims {
			if after := snapshotOrg(t, e, v.Org.Name); after != before[v.Org.Name] {
				t.Errorf("%s changed %s:\n%s\n--- now:\n%s", a.key, v.Org.Name, before[v.Org.Name], after)
			}
		}
	}
	t.Logf("%d requests by %d users over %d routes", requests, len(actors), len(routes))
}
