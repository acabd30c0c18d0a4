package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/store"
)

// probe is a request naming another organization's rows, with the status
// a principal allowed to call the route must get, and what else must hold
// of the answer.
type probe struct {
	req   req
	want  int
	check func(t *testing.T, res resp)
}

// walkEntry says how the isolation test calls one route.
type walkEntry struct {
	// target names organization k's own rows: refused with 403 for a
	// principal whose role is too weak.
	target func(w *world, k string) req
	// control succeeds (with status ok) for k's owner; nil: target. It
	// may create rows for itself first.
	control func(t *testing.T, w *world, k string) req
	ok      int
	// foreign names organization f's rows; the principal must not reach
	// them. Nil when the route names no row of any organization but the
	// caller's own: self says why.
	foreign func(w *world, f string) []probe
	self    string
	// selfRead routes are called once in the walk (with target) and their
	// answer checked for other organizations' markers.
	selfRead bool
}

func body(v any) func(method, path string) req {
	return func(method, path string) req { return jsonReq(method, path, v) }
}

func notFound(r req) []probe { return []probe{{req: r, want: http.StatusNotFound}} }

// emptyTotals checks that a list or summary about another organization's
// domain counted nothing.
func emptyTotals(fields ...string) func(t *testing.T, res resp) {
	return func(t *testing.T, res resp) {
		t.Helper()
		v := res.json(t)
		for _, f := range fields {
			if n, _ := v[f].(float64); n != 0 {
				t.Errorf("%s is %v about another organization's domain: %s", f, v[f], res.body)
			}
		}
		if rows, _ := v["rows"].([]any); len(rows) != 0 {
			t.Errorf("rows about another organization's domain: %s", res.body)
		}
		if reports, _ := v["reports"].([]any); len(reports) != 0 {
			t.Errorf("reports of another organization's domain: %s", res.body)
		}
		if _, ok := v["ready_to_enforce"]; ok {
			t.Errorf("a verdict about another organization's domain: %s", res.body)
		}
		for _, list := range []string{"sources", "services", "groups", "fixes"} {
			if l, _ := v[list].([]any); len(l) != 0 {
				t.Errorf("%s of another organization's domain: %s", list, res.body)
			}
		}
		if _, ok := v["published"]; ok {
			t.Errorf("the policy another organization's domain published: %s", res.body)
		}
	}
}

// walk is how every route is called. A route of api.Routes() missing here
// fails TestTenantIsolation.
func walk() map[string]walkEntry {
	dom := func(w *world, k string) string { return "/api/v1/domains/" + w.orgs[k].domain }
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	return map[string]walkEntry{
		"GET /api/v1/openapi.json": {target: func(*world, string) req { return get("/api/v1/openapi.json") }, ok: 200,
			self: "public: the API's description, nobody's data"},
		"GET /api/v1/me": {target: func(*world, string) req { return get("/api/v1/me") }, ok: 200, selfRead: true,
			self: "answers about the caller only"},
		"GET /api/v1/orgs": {target: func(*world, string) req { return get("/api/v1/orgs") }, ok: 200, selfRead: true,
			self: "lists the caller's scope"},
		"POST /api/v1/orgs": {
			target: func(_ *world, k string) req {
				return jsonReq("POST", "/api/v1/orgs", map[string]string{"name": "cust-" + k, "display_name": "Customer"})
			}, ok: 201, self: "creates a customer of the organization the caller acts in, no other"},
		"GET /api/v1/domains": {target: func(*world, string) req { return get("/api/v1/domains?limit=1000") }, ok: 200, selfRead: true,
			foreign: func(w *world, f string) []probe { return notFound(get("/api/v1/domains?org=org-" + f)) }},
		"POST /api/v1/domains": {
			target: func(_ *world, k string) req {
				return jsonReq("POST", "/api/v1/domains", map[string]any{"name": "new-" + k + ".example", "mx": []string{"mx.new.example"}})
			}, ok: 201,
			foreign: func(w *world, f string) []probe {
				return []probe{
					{req: jsonReq("POST", "/api/v1/domains", map[string]any{"name": w.orgs[f].domain, "mx": []string{"mx.x.example"}}), want: 409},
					{req: jsonReq("POST", "/api/v1/domains", map[string]any{"name": "into-" + f + ".example", "mx": []string{"mx.x.example"}, "org": "org-" + f}), want: 404},
				}
			}},
		"GET /api/v1/domains/{name}": {target: func(w *world, k string) req { return get(dom(w, k)) }, ok: 200,
			foreign: func(w *world, f string) []probe { return notFound(get(dom(w, f))) }},
		"PATCH /api/v1/domains/{name}": {target: func(w *world, k string) req { return body(map[string]any{"mode": "enforce"})("PATCH", dom(w, k)) }, ok: 200,
			foreign: func(w *world, f string) []probe {
				return notFound(body(map[string]any{"mode": "none", "mx": []string{}})("PATCH", dom(w, f)))
			}},
		"DELETE /api/v1/domains/{name}": {target: func(w *world, k string) req { return del(dom(w, k)) }, ok: 204,
			control: func(t *testing.T, w *world, k string) req {
				w.e.domain(t, w.orgs[k].org, "gone-"+k+".example")
				return del("/api/v1/domains/gone-" + k + ".example")
			},
			foreign: func(w *world, f string) []probe { return notFound(del(dom(w, f))) }},
		"GET /api/v1/domains/{name}/records": {target: func(w *world, k string) req { return get(dom(w, k) + "/records") }, ok: 200,
			foreign: func(w *world, f string) []probe { return notFound(get(dom(w, f) + "/records")) }},
		"POST /api/v1/domains/{name}/verify": {target: func(w *world, k string) req { return post(dom(w, k) + "/verify") }, ok: 200,
			foreign: func(w *world, f string) []probe { return notFound(post(dom(w, f) + "/verify")) }},
		"GET /api/v1/domains/{name}/versions": {target: func(w *world, k string) req { return get(dom(w, k) + "/versions") }, ok: 200,
			foreign: func(w *world, f string) []probe { return notFound(get(dom(w, f) + "/versions")) }},
		"GET /api/v1/domains/{name}/events": {target: func(w *world, k string) req { return get(dom(w, k) + "/events") }, ok: 200,
			foreign: func(w *world, f string) []probe { return notFound(get(dom(w, f) + "/events?since=")) }},
		"GET /api/v1/domains/{name}/checks": {target: func(w *world, k string) req { return get(dom(w, k) + "/checks") }, ok: 200,
			foreign: func(w *world, f string) []probe { return notFound(get(dom(w, f) + "/checks")) }},
		"GET /api/v1/reports/tlsrpt": {target: func(*world, string) req { return get("/api/v1/reports/tlsrpt?limit=1000") }, ok: 200, selfRead: true,
			foreign: func(w *world, f string) []probe {
				return []probe{{req: get("/api/v1/reports/tlsrpt?domain=" + w.orgs[f].domain), want: 200, check: emptyTotals("total")}}
			}},
		"POST /api/v1/reports/tlsrpt": {
			target: func(w *world, k string) req {
				return req{method: "POST", path: "/api/v1/reports/tlsrpt", ctype: "application/tlsrpt+json",
					body: reportJSON("uploader-"+k, "upload-"+k, w.orgs[k].domain, 5, 1)}
			}, ok: 201,
			foreign: func(w *world, f string) []probe {
				return []probe{{req: req{method: "POST", path: "/api/v1/reports/tlsrpt", ctype: "application/tlsrpt+json",
					body: reportJSON("uploader-x", "forged-"+f, w.orgs[f].domain, 1000, 1000)}, want: 400}}
			}},
		"GET /api/v1/reports/tlsrpt/summary": {target: func(*world, string) req { return get("/api/v1/reports/tlsrpt/summary?since=&by=domain") }, ok: 200, selfRead: true,
			foreign: func(w *world, f string) []probe {
				return []probe{{req: get("/api/v1/reports/tlsrpt/summary?since=&domain=" + w.orgs[f].domain), want: 200,
					check: emptyTotals("total_successful_sessions", "total_failed_sessions")}}
			}},
		"GET /api/v1/reports/tlsrpt/{id}": {target: func(w *world, k string) req { return get("/api/v1/reports/tlsrpt/" + id(w.orgs[k].reportID)) }, ok: 200,
			foreign: func(w *world, f string) []probe {
				return notFound(get("/api/v1/reports/tlsrpt/" + id(w.orgs[f].reportID)))
			}},
		"GET /api/v1/reports/tlsrpt/{id}/raw": {target: func(w *world, k string) req { return get("/api/v1/reports/tlsrpt/" + id(w.orgs[k].reportID) + "/raw") }, ok: 200,
			foreign: func(w *world, f string) []probe {
				return notFound(get("/api/v1/reports/tlsrpt/" + id(w.orgs[f].reportID) + "/raw"))
			}},
		"GET /api/v1/reports/dmarc": {target: func(*world, string) req { return get("/api/v1/reports/dmarc?limit=1000") }, ok: 200, selfRead: true,
			foreign: func(w *world, f string) []probe {
				return []probe{{req: get("/api/v1/reports/dmarc?since=&domain=" + w.orgs[f].domain), want: 200, check: emptyTotals("total")}}
			}},
		"POST /api/v1/reports/dmarc": {
			target: func(w *world, k string) req {
				return req{method: "POST", path: "/api/v1/reports/dmarc", ctype: "application/xml",
					body: dmarcXML("uploader-"+k, "upload-"+k, w.orgs[k].domain, 5)}
			}, ok: 201,
			foreign: func(w *world, f string) []probe {
				return []probe{{req: req{method: "POST", path: "/api/v1/reports/dmarc", ctype: "application/xml",
					body: dmarcXML("uploader-x", "forged-"+f, w.orgs[f].domain, 1000)}, want: 400}}
			}},
		"GET /api/v1/reports/dmarc/summary": {target: func(*world, string) req { return get("/api/v1/reports/dmarc/summary?since=&by=domain") }, ok: 200, selfRead: true,
			foreign: func(w *world, f string) []probe {
				return []probe{{req: get("/api/v1/reports/dmarc/summary?since=&by=source&domain=" + w.orgs[f].domain), want: 200,
					check: emptyTotals("total_messages", "dmarc_pass", "dmarc_fail")}}
			}},
		"GET /api/v1/reports/dmarc/senders": {target: func(w *world, k string) req {
			return get("/api/v1/reports/dmarc/senders?since=&domain=" + w.orgs[k].domain)
		}, ok: 200,
			foreign: func(w *world, f string) []probe {
				return []probe{
					{req: get("/api/v1/reports/dmarc/senders?since=&domain=" + w.orgs[f].domain), want: 200, check: emptyTotals("messages", "dmarc_pass")},
					{req: get("/api/v1/reports/dmarc/senders?since=&new=1&domain=" + w.orgs[f].domain), want: 200, check: emptyTotals()},
				}
			}},
		"GET /api/v1/reports/dmarc/impact": {target: func(w *world, k string) req {
			return get("/api/v1/reports/dmarc/impact?since=&domain=" + w.orgs[k].domain)
		}, ok: 200,
			foreign: func(w *world, f string) []probe {
				return []probe{{req: get("/api/v1/reports/dmarc/impact?since=&domain=" + w.orgs[f].domain), want: 200,
					check: emptyTotals("messages", "failing", "rejected", "quarantined", "forwarded")}}
			}},
		"GET /api/v1/reports/dmarc/{id}": {target: func(w *world, k string) req { return get("/api/v1/reports/dmarc/" + id(w.orgs[k].dmarcID)) }, ok: 200,
			foreign: func(w *world, f string) []probe {
				return notFound(get("/api/v1/reports/dmarc/" + id(w.orgs[f].dmarcID)))
			}},
		"GET /api/v1/reports/dmarc/{id}/raw": {target: func(w *world, k string) req { return get("/api/v1/reports/dmarc/" + id(w.orgs[k].dmarcID) + "/raw") }, ok: 200,
			foreign: func(w *world, f string) []probe {
				return notFound(get("/api/v1/reports/dmarc/" + id(w.orgs[f].dmarcID) + "/raw"))
			}},
		"POST /api/v1/checks": {target: func(w *world, k string) req {
			return jsonReq("POST", "/api/v1/checks", map[string]string{"domain": w.orgs[k].domain})
		}, ok: 201,
			self: "checks public DNS and stores the result in the caller's organization (TestChecksStayInTheirOrganization)"},
		"GET /api/v1/checks/{id}": {target: func(w *world, k string) req { return get("/api/v1/checks/" + id(w.orgs[k].checkID)) }, ok: 200,
			foreign: func(w *world, f string) []probe { return notFound(get("/api/v1/checks/" + id(w.orgs[f].checkID))) }},
		"GET /api/v1/tokens": {target: func(*world, string) req { return get("/api/v1/tokens") }, ok: 200, selfRead: true,
			self: "lists the tokens of the organization the caller acts in"},
		"POST /api/v1/tokens": {target: func(_ *world, k string) req {
			return jsonReq("POST", "/api/v1/tokens", map[string]string{"name": "new", "scope": "read"})
		}, ok: 201,
			self: "creates a token of the organization the caller acts in"},
		"DELETE /api/v1/tokens/{id}": {target: func(w *world, k string) req { return del("/api/v1/tokens/" + id(w.orgs[k].tokenID[store.ScopeRead])) }, ok: 204,
			control: func(t *testing.T, w *world, k string) req {
				_, tk := w.e.token(t, w.orgs[k].org, "doomed", store.ScopeRead)
				return del("/api/v1/tokens/" + id(tk.ID))
			},
			foreign: func(w *world, f string) []probe {
				return append(notFound(del("/api/v1/tokens/"+id(w.orgs[f].tokenID[store.ScopeRead]))),
					notFound(del("/api/v1/tokens/"+id(w.orgs[f].tokenID[store.ScopeWrite])))...)
			}},
		"GET /api/v1/users": {target: func(*world, string) req { return get("/api/v1/users") }, ok: 200, selfRead: true,
			self: "lists the members of the organization the caller acts in"},
		"PATCH /api/v1/users/{id}": {target: func(w *world, k string) req {
			return jsonReq("PATCH", "/api/v1/users/"+id(w.orgs[k].userIDs[store.RoleViewer]), map[string]string{"role": "admin"})
		}, ok: 200,
			foreign: func(w *world, f string) []probe {
				return notFound(jsonReq("PATCH", "/api/v1/users/"+id(w.orgs[f].userIDs[store.RoleOwner]), map[string]string{"role": "viewer"}))
			}},
		"DELETE /api/v1/users/{id}": {target: func(w *world, k string) req { return del("/api/v1/users/" + id(w.orgs[k].userIDs[store.RoleViewer])) }, ok: 204,
			control: func(t *testing.T, w *world, k string) req {
				_, u := w.e.user(t, "leaving@"+k+".test", w.orgs[k].org, store.RoleViewer)
				return del("/api/v1/users/" + id(u.ID))
			},
			foreign: func(w *world, f string) []probe {
				return notFound(del("/api/v1/users/" + id(w.orgs[f].userIDs[store.RoleAdmin])))
			}},
		"GET /api/v1/invitations": {target: func(*world, string) req { return get("/api/v1/invitations") }, ok: 200, selfRead: true,
			self: "lists the invitations of the organization the caller acts in"},
		"POST /api/v1/invitations": {target: func(_ *world, k string) req {
			return jsonReq("POST", "/api/v1/invitations", map[string]string{"email": "new@" + k + ".test", "role": "admin"})
		}, ok: 201, self: "invites to the organization the caller acts in"},
		"DELETE /api/v1/invitations/{id}": {target: func(w *world, k string) req { return del("/api/v1/invitations/" + id(w.orgs[k].invID)) }, ok: 204,
			control: func(t *testing.T, w *world, k string) req {
				return del("/api/v1/invitations/" + id(w.e.invitation(t, w.orgs[k].org, "late@"+k+".test", store.RoleViewer)))
			},
			foreign: func(w *world, f string) []probe { return notFound(del("/api/v1/invitations/" + id(w.orgs[f].invID))) }},
	}
}

// can reports whether role allows perm, as auth.Principal.Can.
func can(role, perm string) bool {
	return perm == "" || (&auth.Principal{Role: role}).Can(perm)
}

// TestTenantIsolation walks every route as every principal of the world:
// with the rows of every organization outside the principal's scope (404,
// or 403 when its role may not call the route at all, and for lists
// nothing of theirs), with its own rows where its role is too weak (403),
// and checks that the store is unchanged. Then, one by one, that each
// request succeeds for a principal allowed to make it, so that the 404s
// above come from the scope and not from a malformed request.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	for _, db := range stores() {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, db.opts(t))
			w := newWorld(t, e)
			entries := walk()
			for k, en := range failureWalk(func(n int64) string { return strconv.FormatInt(n, 10) }) {
				entries[k] = en
			}
			routes := api.Routes()
			for _, rt := range routes {
				key := rt.Method + " " + rt.Pattern
				en, ok := entries[key]
				switch {
				case !ok:
					t.Fatalf("route %s is not in the isolation walk", key)
				case en.foreign == nil && en.self == "":
					t.Errorf("route %s names no foreign rows and says not why", key)
				}
			}
			if len(entries) != len(routes) {
				t.Fatalf("the walk has %d entries for %d routes", len(entries), len(routes))
			}
			before := e.snapshot(t)
			var requests atomic.Int64
			t.Run("walk", func(t *testing.T) {
				for _, p := range w.principals {
					t.Run(p.name, func(t *testing.T) {
						t.Parallel()
						walkAs(t, w, p, routes, entries, &requests)
					})
				}
			})
			if after := e.snapshot(t); after != before {
				t.Fatalf("the walk changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// The controls, in order: the same requests succeed for an
			// owner of their organization.
			for _, rt := range routes {
				en := entries[rt.Method+" "+rt.Pattern]
				r := en.target(w, "a")
				if en.control != nil {
					r = en.control(t, w, "a")
				}
				c := w.orgs["a"].users[store.RoleOwner]
				if res := e.do(t, c, r); res.status != en.ok {
					t.Errorf("control %s as %s: %d, want %d\n%s", r, c.name, res.status, en.ok, res.body)
				}
			}
			// An MSP's owner reaches its customer's rows; its viewer does not
			// (the walk checked that).
			owner := w.orgs["p"].users[store.RoleOwner]
			e.must(t, owner, get("/api/v1/domains/"+w.orgs["c"].domain), 200)
			e.must(t, owner, jsonReq("POST", "/api/v1/domains", map[string]any{"name": "placed.example", "mx": []string{"mx.placed.example"}, "org": "org-c"}), 201)
			sharedReport(t, w)
			t.Logf("%d principals, %d routes, %d refused or foreign requests", len(w.principals), len(routes), requests.Load())
		})
	}
}

// walkAs makes p's requests of the walk.
func walkAs(t *testing.T, w *world, p principal, routes []api.Route, entries map[string]walkEntry, n *atomic.Int64) {
	e := w.e
	foreignMarkers := func(r req) []string {
		var l []string
		text := r.path + " " + string(r.body)
		for k, o := range w.orgs {
			if p.scope[k] {
				continue
			}
			for _, m := range o.markers() {
				bare := strings.TrimSuffix(m, `"`)
				if !strings.Contains(text, bare) && !strings.Contains(p.name, bare) {
					l = append(l, m)
				}
			}
		}
		return l
	}
	leaks := func(r req, res resp) {
		t.Helper()
		n.Add(1)
		for _, m := range foreignMarkers(r) {
			if strings.Contains(string(res.body), m) {
				t.Errorf("%s as %s: the answer holds %q of another organization:\n%s", r, p.name, m, res.body)
			}
		}
	}
	for _, rt := range routes {
		en := entries[rt.Method+" "+rt.Pattern]
		allowed := can(p.role, rt.Perm)
		if !allowed {
			r := en.target(w, p.org)
			n.Add(1)
			if res := e.do(t, p.cred, r); res.status != http.StatusForbidden {
				t.Errorf("%s as %s (%s): %d, want 403\n%s", r, p.name, p.role, res.status, res.body)
			}
		}
		if en.selfRead {
			r := en.target(w, p.org)
			res := e.do(t, p.cred, r)
			if res.status != en.ok {
				t.Errorf("%s as %s: %d, want %d\n%s", r, p.name, res.status, en.ok, res.body)
			}
			leaks(r, res)
		}
		if en.foreign == nil {
			continue
		}
		for f := range w.orgs {
			if p.scope[f] {
				continue
			}
			for _, pr := range en.foreign(w, f) {
				want := pr.want
				if !allowed {
					want = http.StatusForbidden
				}
				res := e.do(t, p.cred, pr.req)
				if res.status != want {
					t.Errorf("%s as %s (%s, foreign org %s): %d, want %d\n%s", pr.req, p.name, p.role, f, res.status, want, res.body)
					continue
				}
				leaks(pr.req, res)
				if pr.check != nil && allowed {
					pr.check(t, res)
				}
			}
		}
	}
}

// TestChecksStayInTheirOrganization: a check of another organization's
// domain is stored in the caller's organization, visible to it and not to
// the other.
func TestChecksStayInTheirOrganization(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stores()[0].opts(t))
	a, b := e.org(t, "org-a", 0), e.org(t, "org-b", 0)
	e.domain(t, b, "dom-b.example")
	ca, _ := e.user(t, "admin@a.test", a, store.RoleAdmin)
	cb, _ := e.user(t, "admin@b.test", b, store.RoleAdmin)
	res := e.must(t, ca, jsonReq("POST", "/api/v1/checks", map[string]string{"domain": "dom-b.example"}), 201)
	loc := res.header.Get("Location")
	if got := e.must(t, ca, get(loc), 200).json(t); got["org"].(map[string]any)["name"] != "org-a" {
		t.Errorf("the check is stored for %v, want org-a", got["org"])
	}
	e.must(t, cb, get(loc), 404)
	list := e.must(t, cb, get("/api/v1/domains/dom-b.example/checks"), 200).json(t)
	if n := len(list["checks"].([]any)); n != 0 {
		t.Errorf("B sees %d checks of its domain made by A", n)
	}
	list = e.must(t, ca, get("/api/v1/domains/dom-b.example/checks"), 200).json(t)
	if n := len(list["checks"].([]any)); n != 1 {
		t.Errorf("A sees %d checks of dom-b.example, want its own 1", n)
	}
}

// sharedReport: a report with policies for A's and B's domains shows each
// its part only, and its raw bytes (which hold both) to neither; the
// operator sees it whole.
func sharedReport(t *testing.T, w *world) {
	e := w.e
	id := strconv.FormatInt(w.sharedReport, 10)
	for _, tc := range []struct {
		k          string
		ok, failed float64
		other      string
	}{{"a", 7, 1, "dom-b.example"}, {"b", 70, 10, "dom-a.example"}} {
		c := w.orgs[tc.k].users[store.RoleViewer]
		res := e.must(t, c, get("/api/v1/reports/tlsrpt/"+id), 200)
		v := res.json(t)
		doms := v["domains"].([]any)
		if len(doms) != 1 || doms[0] != w.orgs[tc.k].domain || v["total_successful_sessions"] != tc.ok || v["total_failed_sessions"] != tc.failed ||
			strings.Contains(string(res.body), tc.other) {
			t.Errorf("the shared report as %s:\n%s", c.name, res.body)
		}
		if pols := v["report"].(map[string]any)["policies"].([]any); len(pols) != 1 {
			t.Errorf("the shared report as %s has %d policies, want its own 1", c.name, len(pols))
		}
		e.must(t, c, get("/api/v1/reports/tlsrpt/"+id+"/raw"), 403)
		list := e.must(t, c, get("/api/v1/reports/tlsrpt?domain="+w.orgs[tc.k].domain), 200)
		found := false
		for _, r := range list.json(t)["reports"].([]any) {
			r := r.(map[string]any)
			if r["report_id"] == "rid-shared" {
				found = true
				if r["total_successful_sessions"] != tc.ok || r["total_failed_sessions"] != tc.failed || len(r["domains"].([]any)) != 1 {
					t.Errorf("the shared report in the list as %s: %v", c.name, r)
				}
			}
		}
		if !found || strings.Contains(string(list.body), tc.other) {
			t.Errorf("the list as %s:\n%s", c.name, list.body)
		}
	}
	v := e.must(t, w.operator, get("/api/v1/reports/tlsrpt/"+id), 200).json(t)
	if len(v["domains"].([]any)) != 2 || v["total_successful_sessions"] != float64(77) {
		t.Errorf("the shared report as the operator: %v", v)
	}
	e.must(t, w.operator, get("/api/v1/reports/tlsrpt/"+id+"/raw"), 200)
}
