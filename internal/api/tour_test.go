package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/dmarcstats"
	"github.com/moatmail/moat/internal/senders"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrptstats"
)

// TestTour calls every endpoint, on success and on its typical errors, as
// a client would, and checks the answers; every answer is validated
// against the OpenAPI document on the way (env.do). At the end every
// route must have answered its documented success.
func TestTour(t *testing.T) {
	t.Parallel()
	for _, db := range stores() {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, db.opts(t))
			tour(t, e)
			checkCoverage(t, e)
		})
	}
}

func tour(t *testing.T, e *env) {
	acme := e.org(t, "acme", 0)
	owner, ownerU := e.user(t, "owner@acme.test", acme, store.RoleOwner)
	admin, adminU := e.user(t, "admin@acme.test", acme, store.RoleAdmin)
	viewer, viewerU := e.user(t, "viewer@acme.test", acme, store.RoleViewer)
	anon := cred{name: "nobody"}

	// The description is public; everything else wants a principal.
	e.must(t, anon, get("/api/v1/openapi.json"), 200)
	e.must(t, anon, get("/api/v1/openapi.json?x=1"), 400)
	e.must(t, anon, get("/api/v1/me"), 401)
	if res := e.must(t, cred{name: "bad token", bearer: "moat_t_nothing"}, get("/api/v1/me"), 401); res.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	e.must(t, owner, get("/api/v1/nothing"), 404)
	if res := e.must(t, owner, req{method: "PUT", path: "/api/v1/domains"}, 405); res.header.Get("Allow") != "GET, POST" {
		t.Errorf("405 Allow: %q", res.header.Get("Allow"))
	}
	me := e.must(t, owner, get("/api/v1/me"), 200).json(t)
	if me["role"] != "owner" || me["user"].(map[string]any)["email"] != "owner@acme.test" || me["token"] != nil {
		t.Errorf("me: %v", me)
	}

	// Organizations: an MSP creates a customer.
	e.must(t, viewer, jsonReq("POST", "/api/v1/orgs", map[string]string{"name": "cust"}), 403)
	e.must(t, admin, jsonReq("POST", "/api/v1/orgs", map[string]string{"name": "Not A Slug"}), 400)
	cust := e.must(t, admin, jsonReq("POST", "/api/v1/orgs", map[string]string{"name": "cust", "display_name": "Customer"}), 201).json(t)
	if cust["parent_id"] != float64(acme.ID) || cust["display_name"] != "Customer" {
		t.Errorf("customer: %v", cust)
	}
	e.must(t, admin, jsonReq("POST", "/api/v1/orgs", map[string]string{"name": "cust"}), 409)
	orgs := e.must(t, viewer, get("/api/v1/orgs"), 200).json(t)["orgs"].([]any)
	if len(orgs) != 1 {
		t.Errorf("a viewer of the MSP sees %d organizations, want its own only", len(orgs))
	}
	if orgs := e.must(t, owner, get("/api/v1/orgs"), 200).json(t)["orgs"].([]any); len(orgs) != 2 {
		t.Errorf("the MSP's owner sees %d organizations, want 2", len(orgs))
	}

	// Domains.
	e.must(t, viewer, jsonReq("POST", "/api/v1/domains", map[string]any{"name": "example.com", "mx": []string{"mx.example.com"}}), 403)
	res := e.must(t, admin, jsonReq("POST", "/api/v1/domains", map[string]any{"name": "Example.COM.", "mx": []string{"MX1.example.com"}, "rua": []string{"mailto:me@example.com"}}), 201)
	created := res.json(t)
	if d := created["domain"].(map[string]any); d["domain"] != "example.com" || d["mode"] != "testing" || d["version"] != float64(1) ||
		d["org"].(map[string]any)["name"] != "acme" || len(created["records"].([]any)) != 3 || res.header.Get("Location") != "/api/v1/domains/example.com" {
		t.Errorf("created: %s", res.body)
	}
	for _, tc := range []struct {
		body map[string]any
		want int
		in   string
	}{
		{map[string]any{"name": "example.com", "mx": []string{"mx.example.com"}}, 409, "already hosted"},
		{map[string]any{"name": "bad..name", "mx": []string{"mx.example.com"}}, 400, "invalid domain name"},
		{map[string]any{"name": "ok.example", "mx": []string{"mx.ok.example"}, "mode": "strict"}, 400, "mode"},
		{map[string]any{"name": "ok.example", "mx": []string{}}, 400, "mx"},
		{map[string]any{"name": "ok.example", "mx": []string{"mx.ok.example"}, "max_age": 99999999}, 400, "max_age"},
		{map[string]any{"name": "ok.example", "mx": []string{"mx.ok.example"}, "rua": []string{"ftp://x"}}, 400, "rua"},
		{map[string]any{"name": "ok.example", "mx": []string{"mx.ok.example"}, "org": "nope"}, 404, "org"},
		{map[string]any{"name": "ok.example", "mx": []string{"mx.ok.example"}, "colour": "red"}, 400, `colour: unknown field; this endpoint takes name, mx, mode, max_age, rua, org`},
		{map[string]any{"name": 5}, 400, "name: want a string"},
		{map[string]any{"name": "ok.example", "mx": "mx.ok.example"}, 400, "mx: want an array of strings"},
	} {
		res := e.must(t, admin, jsonReq("POST", "/api/v1/domains", tc.body), tc.want)
		if !strings.Contains(string(res.body), tc.in) {
			t.Errorf("POST %v: %s, want it to say %q", tc.body, res.body, tc.in)
		}
	}
	e.must(t, admin, jsonReq("POST", "/api/v1/domains", map[string]any{"name": "cust.example", "mx": []string{"mx.cust.example"}, "org": "cust", "mode": "enforce"}), 201)
	for i := range 3 {
		e.must(t, admin, jsonReq("POST", "/api/v1/domains", map[string]any{"name": fmt.Sprintf("page%d.example", i), "mx": []string{"mx.example.net"}}), 201)
	}
	// Pages of two: every domain once, in order.
	var names []string
	next := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
		page := e.must(t, owner, get("/api/v1/domains?limit=2&after="+next), 200).json(t)
		for _, d := range page["domains"].([]any) {
			names = append(names, d.(map[string]any)["domain"].(string))
		}
		n, _ := page["next"].(string)
		if n == "" {
			break
		}
		next = n
	}
	if strings.Join(names, " ") != "cust.example example.com page0.example page1.example page2.example" {
		t.Errorf("pages: %v", names)
	}
	e.must(t, viewer, get("/api/v1/domains?org=cust"), 404) // a viewer of the MSP does not see its customers
	if l := e.must(t, viewer, get("/api/v1/domains"), 200).json(t); l["total"] != float64(4) {
		t.Errorf("a viewer of the MSP sees %v domains, want its own 4", l["total"])
	}
	if l := e.must(t, owner, get("/api/v1/domains?mode=enforce&org=cust&sort=-grade"), 200).json(t); l["total"] != float64(1) {
		t.Errorf("filtered: %v", l)
	}
	if l := e.must(t, owner, get("/api/v1/domains?q=page&sort=-name&limit=1"), 200).json(t); l["domains"].([]any)[0].(map[string]any)["domain"] != "page2.example" {
		t.Errorf("q and sort: %v", l)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "sort=size", "mode=strict", "after=garbage", "color=red", "limit=1&limit=2"} {
		e.must(t, viewer, get("/api/v1/domains?"+q), 400)
	}
	e.must(t, viewer, get("/api/v1/domains?org=nope"), 404)

	d := e.must(t, viewer, get("/api/v1/domains/example.com"), 200).json(t)
	if !strings.Contains(d["policy"].(string), "mx: mx1.example.com") || d["check"] != nil || d["verify"] != nil {
		t.Errorf("domain: %v", d)
	}
	e.must(t, viewer, get("/api/v1/domains/nothere.example"), 404)
	e.must(t, viewer, get("/api/v1/domains/bad..name"), 400)
	e.must(t, viewer, jsonReq("PATCH", "/api/v1/domains/example.com", map[string]any{"mode": "enforce"}), 403)
	e.must(t, admin, jsonReq("PATCH", "/api/v1/domains/example.com", map[string]any{}), 400)
	e.must(t, admin, jsonReq("PATCH", "/api/v1/domains/example.com", map[string]any{"mode": "bogus"}), 400)
	e.must(t, admin, jsonReq("PATCH", "/api/v1/domains/nothere.example", map[string]any{"mode": "enforce"}), 404)
	e.must(t, admin, req{method: "PATCH", path: "/api/v1/domains/example.com", body: []byte(`{"mode":"enforce"}`), ctype: "text/plain"}, 415)
	e.must(t, admin, req{method: "PATCH", path: "/api/v1/domains/example.com", body: []byte(`{"mode":`), ctype: "application/json"}, 400)
	e.must(t, admin, req{method: "PATCH", path: "/api/v1/domains/example.com", body: []byte(`{"mode":"enforce"} {}`), ctype: "application/json"}, 400)
	big := append([]byte(`{"mode":"enforce","rua":["`), bytes.Repeat([]byte("x"), 1<<20)...)
	e.must(t, admin, req{method: "PATCH", path: "/api/v1/domains/example.com", body: append(big, `"]}`...), ctype: "application/json"}, 413)
	p := e.must(t, admin, jsonReq("PATCH", "/api/v1/domains/example.com", map[string]any{"mode": "enforce"}), 200).json(t)
	if p["policy_changed"] != true || p["domain"].(map[string]any)["version"] != float64(2) || p["policy_id"] == "" {
		t.Errorf("patch: %v", p)
	}
	p = e.must(t, admin, jsonReq("PATCH", "/api/v1/domains/example.com", map[string]any{"rua": []string{}}), 200).json(t)
	if p["policy_changed"] != false {
		t.Errorf("a rua change changed the policy: %v", p)
	}
	vs := e.must(t, viewer, get("/api/v1/domains/example.com/versions"), 200).json(t)["versions"].([]any)
	if len(vs) != 2 || vs[0].(map[string]any)["mode"] != "enforce" {
		t.Errorf("versions: %v", vs)
	}
	rec := e.must(t, viewer, get("/api/v1/domains/example.com/records"), 200).json(t)
	if c := rec["cname"].([]any); len(c) != 3 || c[1].(map[string]any)["value"] != "example.com._mta-sts.moat.test." {
		t.Errorf("records: %v", rec)
	}

	// Verify: dom-a.example's zone delegates two names of three.
	e.must(t, admin, jsonReq("POST", "/api/v1/domains", map[string]any{"name": "dom-a.example", "mx": []string{"mx.dom-a.example"}}), 201)
	e.must(t, viewer, post("/api/v1/domains/dom-a.example/verify"), 403)
	e.must(t, admin, post("/api/v1/domains/nothere.example/verify"), 404)
	v := e.must(t, admin, post("/api/v1/domains/dom-a.example/verify"), 200).json(t)
	checks := v["checks"].([]any)
	if v["ok"] != false || len(checks) != 3 || checks[0].(map[string]any)["status"] != "ok" || checks[2].(map[string]any)["status"] == "ok" ||
		!strings.Contains(checks[2].(map[string]any)["fix"].(string), "_smtp._tls.dom-a.example.") {
		t.Errorf("verify: %v", v)
	}
	if d := e.must(t, viewer, get("/api/v1/domains/dom-a.example"), 200).json(t); d["verify"] == nil || d["verify"].(map[string]any)["ok"] != false {
		t.Errorf("the overview does not show the verification: %v", d["verify"])
	}
	// Events: a certificate.
	if err := e.st.RecordCertificate(t.Context(), "example.com", e.now().Add(-time.Hour), e.now().AddDate(0, 3, 0), "issued by a test"); err != nil {
		t.Fatal(err)
	}
	ev := e.must(t, viewer, get("/api/v1/domains/example.com/events?since=1d"), 200).json(t)["events"].([]any)
	if len(ev) != 1 || ev[0].(map[string]any)["kind"] != "certificate" {
		t.Errorf("events: %v", ev)
	}
	e.must(t, viewer, get("/api/v1/domains/example.com/events?since=yesterday"), 400)
	e.must(t, viewer, get("/api/v1/domains/nothere.example/events"), 404)

	// Checks.
	e.must(t, viewer, jsonReq("POST", "/api/v1/checks", map[string]string{"domain": "example.com"}), 403)
	e.must(t, admin, jsonReq("POST", "/api/v1/checks", map[string]string{}), 400)
	e.must(t, admin, jsonReq("POST", "/api/v1/checks", map[string]string{"domain": "com"}), 400)
	var ids []string
	for range 3 {
		res := e.must(t, admin, jsonReq("POST", "/api/v1/checks", map[string]string{"domain": "example.com"}), 201)
		rep := res.json(t)
		if rep["domain"] != "example.com" || rep["grade"] == "" || rep["findings"] == nil {
			t.Errorf("check: %s", res.body)
		}
		ids = append(ids, strings.TrimPrefix(res.header.Get("Location"), "/api/v1/checks/"))
	}
	c := e.must(t, viewer, get("/api/v1/checks/"+ids[0]), 200).json(t)
	if c["domain"] != "example.com" || c["report"].(map[string]any)["domain"] != "example.com" {
		t.Errorf("stored check: %v", c)
	}
	e.must(t, viewer, get("/api/v1/checks/999999"), 404)
	e.must(t, viewer, get("/api/v1/checks/x"), 400)
	page := e.must(t, viewer, get("/api/v1/domains/example.com/checks?limit=2"), 200).json(t)
	got := page["checks"].([]any)
	page2 := e.must(t, viewer, get("/api/v1/domains/example.com/checks?limit=2&after="+page["next"].(string)), 200).json(t)
	got = append(got, page2["checks"].([]any)...)
	if len(got) != 3 || page2["next"] != nil || got[0].(map[string]any)["id"] != mustFloat(ids[2]) || got[2].(map[string]any)["id"] != mustFloat(ids[0]) {
		t.Errorf("check pages: %v then %v", page, page2)
	}
	if d := e.must(t, viewer, get("/api/v1/domains/example.com"), 200).json(t); d["check"] == nil {
		t.Error("the overview does not show the newest check")
	}
	e.must(t, viewer, get("/api/v1/domains/example.com/checks?after=eyJsIjoicmVwb3J0cyJ9"), 400) // a cursor of another list
	e.must(t, viewer, get("/api/v1/domains/nothere.example/checks"), 404)

	// Reports: upload JSON and gzip, then read them.
	upload := func(c cred, body []byte, ctype string, want int) resp {
		return e.must(t, c, req{method: "POST", path: "/api/v1/reports/tlsrpt", body: body, ctype: ctype}, want)
	}
	js := reportJSON("Sender A", "r-1", "example.com", 90, 10)
	upload(viewer, js, "application/tlsrpt+json", 403)
	upload(admin, js, "text/plain", 415)
	upload(admin, []byte(" "), "application/json", 400)
	upload(admin, []byte(`{"not":"a report"}`), "application/json", 400)
	upload(admin, reportJSON("Sender A", "r-x", "nothere.example", 1, 0), "application/json", 400)
	upload(admin, bytes.Repeat([]byte(" "), 65<<10), "application/json", 413)
	u := upload(admin, js, "application/tlsrpt+json", 201).json(t)
	if u["duplicate"] != false || u["status"] == "invalid" || u["organization"] != "Sender A" {
		t.Errorf("upload: %v", u)
	}
	if u := upload(admin, js, "application/tlsrpt+json", 200).json(t); u["duplicate"] != true {
		t.Errorf("a second upload is not a duplicate: %v", u)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(reportJSON("Sender B", "r-2", "example.com", 50, 0))
	_ = zw.Close()
	u2 := upload(admin, gz.Bytes(), "application/tlsrpt+gzip", 201).json(t)
	list := e.must(t, viewer, get("/api/v1/reports/tlsrpt?domain=example.com&limit=1"), 200).json(t)
	if list["total"] != float64(2) || len(list["reports"].([]any)) != 1 || list["next"] == nil {
		t.Errorf("list: %v", list)
	}
	list2 := e.must(t, viewer, get("/api/v1/reports/tlsrpt?domain=example.com&limit=1&after="+list["next"].(string)), 200).json(t)
	if len(list2["reports"].([]any)) != 1 || list2["next"] != nil || list2["total"] != float64(2) {
		t.Errorf("second page: %v", list2)
	}
	first, second := list["reports"].([]any)[0].(map[string]any)["id"], list2["reports"].([]any)[0].(map[string]any)["id"]
	if first == second {
		t.Errorf("both pages list report %v", first)
	}
	// Without a domain: pages, but no total.
	all := e.must(t, viewer, get("/api/v1/reports/tlsrpt?limit=1"), 200).json(t)
	if _, ok := all["total"]; ok || len(all["reports"].([]any)) != 1 || all["next"] == nil {
		t.Errorf("list of all domains: %v", all)
	}
	all2 := e.must(t, viewer, get("/api/v1/reports/tlsrpt?limit=1&after="+all["next"].(string)), 200).json(t)
	if len(all2["reports"].([]any)) != 1 || all2["next"] != nil || all2["reports"].([]any)[0].(map[string]any)["id"] != second {
		t.Errorf("second page of all domains: %v", all2)
	}
	// A cursor of an offset, as an older Moat made them, still works.
	if l := e.must(t, viewer, get("/api/v1/reports/tlsrpt?limit=1&after=eyJsIjoicmVwb3J0cyIsIm8iOjF9"), 200).json(t); l["reports"].([]any)[0].(map[string]any)["id"] != second {
		t.Errorf("page after an offset cursor: %v", l)
	}
	for _, q := range []string{"status=great", "since=never", "domain=bad..name", "after=xyz", "limit=5000"} {
		e.must(t, viewer, get("/api/v1/reports/tlsrpt?"+q), 400)
	}
	if l := e.must(t, viewer, get("/api/v1/reports/tlsrpt?status=invalid&since=2d&until=2099-01-01"), 200).json(t); len(l["reports"].([]any)) != 0 || l["next"] != nil {
		t.Errorf("invalid reports: %v", l)
	}
	id := strconv.FormatFloat(u["id"].(float64), 'f', 0, 64)
	show := e.must(t, viewer, get("/api/v1/reports/tlsrpt/"+id), 200).json(t)
	if show["organization"] != "Sender A" || show["report"] == nil || show["total_failed_sessions"] != float64(10) {
		t.Errorf("show: %v", show)
	}
	raw := e.must(t, viewer, get("/api/v1/reports/tlsrpt/"+id+"/raw"), 200)
	if !bytes.Equal(raw.body, js) || raw.header.Get("Content-Type") != "application/tlsrpt+json" {
		t.Errorf("raw: %s %q", raw.header.Get("Content-Type"), raw.body)
	}
	gzID := strconv.FormatFloat(u2["id"].(float64), 'f', 0, 64)
	if raw := e.must(t, viewer, get("/api/v1/reports/tlsrpt/"+gzID+"/raw"), 200); !bytes.Equal(raw.body, gz.Bytes()) || raw.header.Get("Content-Type") != "application/tlsrpt+gzip" {
		t.Errorf("raw gzip: %s", raw.header.Get("Content-Type"))
	}
	e.must(t, viewer, get("/api/v1/reports/tlsrpt/999999"), 404)
	e.must(t, viewer, get("/api/v1/reports/tlsrpt/999999/raw"), 404)
	// Once retention cleared the bytes: 410, and the report stays.
	if _, err := e.st.Prune(t.Context(), store.Retention{Raw: 24 * time.Hour}, store.PruneOptions{Now: time.Now().AddDate(10, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	// Ten years on every sign-in session has expired, and retention took
	// them: sign in again.
	owner, admin, viewer = e.session(t, ownerU, acme), e.session(t, adminU, acme), e.session(t, viewerU, acme)
	if gone := e.must(t, viewer, get("/api/v1/reports/tlsrpt/"+id+"/raw"), 410).json(t); gone["error"].(map[string]any)["code"] != "raw_pruned" {
		t.Errorf("raw after retention: %v", gone)
	}
	e.must(t, viewer, get("/api/v1/reports/tlsrpt/"+id), 200)
	e.must(t, viewer, get("/api/v1/reports/tlsrpt/0"), 400)

	// DMARC reports: upload every shape, read them back.
	dupload := func(c cred, body []byte, ctype string, want int) map[string]any {
		return e.must(t, c, req{method: "POST", path: "/api/v1/reports/dmarc", body: body, ctype: ctype}, want).json(t)
	}
	outcome := func(u map[string]any, i int) map[string]any { return u["reports"].([]any)[i].(map[string]any) }
	dx := dmarcXML("Receiver A", "d-1", "example.com", 4)
	dupload(viewer, dx, "application/xml", 403)
	dupload(admin, dx, "text/plain", 415)
	dupload(admin, []byte(" "), "application/xml", 400)
	dupload(admin, []byte(`<html><body>not a report</body></html>`), "application/xml", 400)
	dupload(admin, dmarcXML("Receiver A", "d-x", "nothere.example", 1), "application/xml", 400)
	dupload(admin, reportJSON("Sender A", "r-9", "example.com", 1, 0), "application/octet-stream", 400) // a TLS report
	dupload(admin, bytes.Repeat([]byte(" "), 65<<10), "application/xml", 413)
	// A session's upload from another site is refused (cross-origin
	// protection, as every state-changing request of a session).
	e.must(t, admin, req{method: "POST", path: "/api/v1/reports/dmarc", body: dx, ctype: "application/xml",
		hdr: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403)
	d1 := dupload(admin, dx, "application/xml", 201)
	if r := outcome(d1, 0); r["outcome"] != "stored" || r["kind"] != "dmarc" || r["records"] != float64(2) || r["messages"] != float64(8) ||
		r["domain"] != "example.com" || r["organization"] != "Receiver A" {
		t.Errorf("DMARC upload: %v", d1)
	}
	var dgz bytes.Buffer
	zw = gzip.NewWriter(&dgz)
	_, _ = zw.Write(dx)
	_ = zw.Close()
	if d := dupload(admin, dgz.Bytes(), "application/gzip", 200); outcome(d, 0)["outcome"] != "duplicate" || outcome(d, 0)["id"] != outcome(d1, 0)["id"] {
		t.Errorf("the same report gzipped: %v", d)
	}
	other := dmarcXML("Receiver A", "d-1", "example.com", 9)
	if d := dupload(admin, other, "text/xml", 201); outcome(d, 0)["outcome"] != "conflict" || outcome(d, 0)["conflict_of"] != outcome(d1, 0)["id"] {
		t.Errorf("another report under the same identity: %v", d)
	}
	broken := dmarcXML("Receiver B", "d-2", "example.com", 1)
	broken = broken[:bytes.Index(broken, []byte("<record>"))+40]
	if d := dupload(admin, broken, "application/xml", 201); outcome(d, 0)["outcome"] != "invalid" || !strings.Contains(outcome(d, 0)["error"].(string), "truncated") {
		t.Errorf("a truncated report: %v", d)
	}
	// A report mail and a mail without a report, in an mbox.
	mail := "From: dmarc@receiver.test\nTo: dmarc@reports.moat.test\nSubject: Report Domain: example.com\nMIME-Version: 1.0\n" +
		"Content-Type: application/xml\n\n" + string(dmarcXML("Receiver C", "d-3", "example.com", 1))
	mbox := "From dmarc@receiver.test Mon Nov  2 10:00:00 2026\n" + mail + "\nFrom x@y.test Mon Nov  2 10:00:01 2026\n" +
		"From: x@y.test\nSubject: hello\n\nhello\n"
	if d := dupload(admin, []byte(mbox), "application/mbox", 201); len(d["reports"].([]any)) != 1 || outcome(d, 0)["message"] != float64(1) ||
		len(d["not_reports"].([]any)) != 1 {
		t.Errorf("mbox: %v", d)
	}
	dlist := e.must(t, viewer, get("/api/v1/reports/dmarc?domain=example.com&since=&limit=2"), 200).json(t)
	if dlist["total"] != float64(4) || len(dlist["reports"].([]any)) != 2 || dlist["next"] == nil {
		t.Errorf("DMARC list: %v", dlist)
	}
	dlist2 := e.must(t, viewer, get("/api/v1/reports/dmarc?domain=example.com&since=&limit=2&after="+dlist["next"].(string)), 200).json(t)
	if len(dlist2["reports"].([]any)) != 2 || dlist2["next"] != nil {
		t.Errorf("DMARC list, second page: %v", dlist2)
	}
	if l := e.must(t, viewer, get("/api/v1/reports/dmarc?status=conflict"), 200).json(t); l["total"] != float64(1) {
		t.Errorf("DMARC conflicts: %v", l)
	}
	for _, q := range []string{"status=great", "since=never", "domain=bad..name", "after=xyz", "after=eyJsIjoicmVwb3J0cyJ9", "limit=5000"} {
		e.must(t, viewer, get("/api/v1/reports/dmarc?"+q), 400)
	}
	did := strconv.FormatFloat(outcome(d1, 0)["id"].(float64), 'f', 0, 64)
	if show := e.must(t, viewer, get("/api/v1/reports/dmarc/"+did), 200).json(t); show["report_id"] != "d-1" || show["messages"] != float64(8) ||
		show["policy_published"].(map[string]any)["p"] != "none" {
		t.Errorf("DMARC show: %v", show)
	}
	if raw := e.must(t, viewer, get("/api/v1/reports/dmarc/"+did+"/raw"), 200); !bytes.Equal(raw.body, dx) || raw.header.Get("Content-Type") != "application/xml" {
		t.Errorf("DMARC raw: %s %q", raw.header.Get("Content-Type"), raw.body)
	}
	e.must(t, viewer, get("/api/v1/reports/dmarc/999999"), 404)
	e.must(t, viewer, get("/api/v1/reports/dmarc/999999/raw"), 404)
	e.must(t, viewer, get("/api/v1/reports/dmarc/0"), 400)
	tourFailures(t, e, owner, admin, viewer)

	// What the DMARC reports say: the same JSON as the CLI's, computed
	// from the rollups of the tenant, with the DNS facts of the cache.
	acmeTenant := e.st.Scoped(store.Scope{Orgs: []int64{acme.ID}})
	if err := e.st.PutPTRs(t.Context(), []store.PTRRecord{{IP: "192.0.2.1", Names: []string{"mail.receiver-a.test"},
		Confirmed: "mail.receiver-a.test", CheckedAt: e.now(), ExpiresAt: e.now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	dsum := e.must(t, viewer, get("/api/v1/reports/dmarc/summary?domain=example.com&since=&by=source"), 200)
	wantSum, err := dmarcstats.Summarize(t.Context(), acmeTenant, dmarcstats.Query{Domain: "example.com", Now: e.now(), By: "source"})
	if err != nil {
		t.Fatal(err)
	}
	if js := dsum.json(t); js["total_messages"] != float64(wantSum.TotalMessages) || wantSum.TotalMessages == 0 ||
		len(js["rows"].([]any)) != 2 || js["dmarc_pass"] != float64(wantSum.TotalMessages) {
		t.Errorf("DMARC summary %v, want %+v (every message passing, two sources)", js, wantSum)
	}
	e.must(t, viewer, get("/api/v1/reports/dmarc/summary?by=week"), 400)
	if js := e.must(t, viewer, get("/api/v1/reports/dmarc/summary?domain=nothere.example"), 200).json(t); js["total_messages"] != float64(0) {
		t.Errorf("summary of a domain outside the scope: %v", js)
	}
	analyzer, err := e.deps.Analyzer(acmeTenant)
	if err != nil {
		t.Fatal(err)
	}
	wantRep, err := analyzer.Senders(t.Context(), senders.Query{Domain: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	rep := e.must(t, viewer, get("/api/v1/reports/dmarc/senders?domain=example.com&since="), 200).json(t)
	srcs := rep["sources"].([]any)
	if rep["messages"] != float64(wantRep.Messages) || len(srcs) != 2 || rep["by_class"].(map[string]any)["forwarded"] != float64(wantSum.TotalMessages) {
		// DKIM passes aligned, SPF fails: the sign of a forwarder.
		t.Errorf("senders %v, want %d messages from two forwarded sources", rep, wantRep.Messages)
	}
	for _, x := range srcs {
		if src := x.(map[string]any); src["ip"] == "192.0.2.1" && (src["ptr"] != "mail.receiver-a.test" || src["ptr_confirmed"] != true) {
			t.Errorf("source 192.0.2.1: %v, want the cached reverse DNS", src)
		}
	}
	if l := e.must(t, viewer, get("/api/v1/reports/dmarc/senders?domain=example.com&since=2d&new=1"), 200).json(t); len(l["sources"].([]any)) != 2 {
		t.Errorf("new sources: %v", l)
	}
	e.must(t, viewer, get("/api/v1/reports/dmarc/senders"), 400)
	e.must(t, viewer, get("/api/v1/reports/dmarc/senders?domain=example.com&new=maybe"), 400)
	im := e.must(t, viewer, get("/api/v1/reports/dmarc/impact?domain=example.com&since=&policy=quarantine&pct=50"), 200).json(t)
	if im["messages"] != float64(wantSum.TotalMessages) || im["failing"] != float64(0) || im["applied"] != "quarantine" ||
		im["policy"].(map[string]any)["pct"] != float64(50) {
		t.Errorf("impact %v, want nothing blocked of %d messages", im, wantSum.TotalMessages)
	}
	if im := e.must(t, viewer, get("/api/v1/reports/dmarc/impact?domain=example.com&testing=1"), 200).json(t); im["applied"] != "quarantine" {
		t.Errorf("impact of p=reject t=y applies %v, want quarantine", im["applied"])
	}
	for _, q := range []string{"pct=0", "pct=101", "pct=x", "policy=none", "testing=2", "since=yesterday"} {
		e.must(t, viewer, get("/api/v1/reports/dmarc/impact?domain=example.com&"+q), 400)
	}

	// The summary is api.Summarize's, byte for byte (the CLI's too).
	sum := e.must(t, viewer, get("/api/v1/reports/tlsrpt/summary?domain=example.com&since=&by=source"), 200)
	want, err := api.Summarize(t.Context(), e.st.Scoped(store.Scope{Orgs: []int64{acme.ID}}),
		tlsrptstats.Query{Domain: "example.com", By: "source"}, e.now())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sum.body, buf.Bytes()) {
		t.Errorf("summary:\n%s\nwant:\n%s", sum.body, buf.Bytes())
	}
	s := sum.json(t)
	if s["total_successful_sessions"] != float64(140) || s["total_failed_sessions"] != float64(10) || len(s["rows"].([]any)) != 3 {
		t.Errorf("summary: %s", sum.body)
	}
	if s := e.must(t, viewer, get("/api/v1/reports/tlsrpt/summary?domain=dom-a.example"), 200).json(t); s["ready_to_enforce"] == nil {
		t.Errorf("no verdict for a testing domain: %v", s)
	}
	e.must(t, viewer, get("/api/v1/reports/tlsrpt/summary?by=color"), 400)
	e.must(t, viewer, get("/api/v1/reports/tlsrpt/summary?since=2026-01-02&until=2026-01-01"), 400)
	e.must(t, viewer, get("/api/v1/reports/tlsrpt/summary?by="), 200)

	// Tokens: the secret once; a read token reads and cannot write.
	e.must(t, viewer, jsonReq("POST", "/api/v1/tokens", map[string]string{"name": "ci", "scope": "read"}), 403)
	e.must(t, admin, jsonReq("POST", "/api/v1/tokens", map[string]string{"name": "", "scope": "read"}), 400)
	e.must(t, admin, jsonReq("POST", "/api/v1/tokens", map[string]string{"name": "ci", "scope": "admin"}), 400)
	rt := e.must(t, admin, jsonReq("POST", "/api/v1/tokens", map[string]string{"name": "reader", "scope": "read"}), 201).json(t)
	wt := e.must(t, admin, jsonReq("POST", "/api/v1/tokens", map[string]string{"name": "writer", "scope": "write"}), 201).json(t)
	reader := cred{name: "reader", bearer: rt["token"].(string)}
	dupload(reader, dmarcXML("Receiver D", "d-10", "example.com", 1), "application/xml", 403)
	writer := cred{name: "writer", bearer: wt["token"].(string)}
	// A write token uploads DMARC reports; a read token may not.
	dupload(writer, dmarcXML("Receiver D", "d-9", "example.com", 1), "application/xml", 201)
	if !strings.HasPrefix(rt["token"].(string), rt["prefix"].(string)) || rt["created_by"] != float64(adminU.ID) {
		t.Errorf("token: %v", rt)
	}
	toks := e.must(t, viewer, get("/api/v1/tokens"), 200)
	if bytes.Contains(toks.body, []byte(rt["token"].(string))) || len(toks.json(t)["tokens"].([]any)) != 2 {
		t.Errorf("tokens: %s", toks.body)
	}
	if me := e.must(t, reader, get("/api/v1/me"), 200).json(t); me["role"] != "viewer" || me["token"].(map[string]any)["scope"] != "read" {
		t.Errorf("me as a read token: %v", me)
	}
	e.must(t, reader, get("/api/v1/domains"), 200)
	e.must(t, reader, jsonReq("POST", "/api/v1/tokens", map[string]string{"name": "more", "scope": "read"}), 403)
	e.must(t, reader, jsonReq("PATCH", "/api/v1/domains/example.com", map[string]any{"mode": "testing"}), 403)
	e.must(t, writer, jsonReq("POST", "/api/v1/tokens", map[string]string{"name": "child", "scope": "write"}), 201)
	e.must(t, writer, jsonReq("PATCH", "/api/v1/users/"+strconv.FormatInt(adminU.ID, 10), map[string]string{"role": "viewer"}), 403)
	e.must(t, writer, del("/api/v1/tokens/"+strconv.FormatFloat(rt["id"].(float64), 'f', 0, 64)), 204)
	e.must(t, reader, get("/api/v1/me"), 401) // revoked
	e.must(t, writer, del("/api/v1/tokens/999999"), 404)

	// Members.
	users := e.must(t, viewer, get("/api/v1/users"), 200).json(t)["users"].([]any)
	if len(users) != 3 {
		t.Errorf("users: %v", users)
	}
	ownerID, adminID := strconv.FormatInt(ownerU.ID, 10), strconv.FormatInt(adminU.ID, 10)
	e.must(t, admin, jsonReq("PATCH", "/api/v1/users/"+adminID, map[string]string{"role": "owner"}), 403)
	e.must(t, owner, jsonReq("PATCH", "/api/v1/users/"+adminID, map[string]string{"role": "king"}), 400)
	e.must(t, owner, jsonReq("PATCH", "/api/v1/users/999999", map[string]string{"role": "viewer"}), 404)
	if res := e.must(t, owner, jsonReq("PATCH", "/api/v1/users/"+ownerID, map[string]string{"role": "admin"}), 409); !strings.Contains(string(res.body), "last_owner") {
		t.Errorf("demoting the last owner: %s", res.body)
	}
	e.must(t, owner, del("/api/v1/users/"+ownerID), 409)
	if m := e.must(t, owner, jsonReq("PATCH", "/api/v1/users/"+adminID, map[string]string{"role": "owner"}), 200).json(t); m["role"] != "owner" {
		t.Errorf("promoted: %v", m)
	}
	e.must(t, owner, jsonReq("PATCH", "/api/v1/users/"+ownerID, map[string]string{"role": "admin"}), 200) // two owners now
	e.must(t, admin, del("/api/v1/users/"+ownerID), 204)
	e.must(t, owner, get("/api/v1/me"), 401) // no organization left to act in

	// Invitations.
	e.must(t, viewer, jsonReq("POST", "/api/v1/invitations", map[string]string{"email": "new@acme.test", "role": "viewer"}), 403)
	e.must(t, admin, jsonReq("POST", "/api/v1/invitations", map[string]string{"email": "not an address", "role": "viewer"}), 400)
	e.must(t, admin, jsonReq("POST", "/api/v1/invitations", map[string]string{"email": "new@acme.test", "role": "god"}), 400)
	e.must(t, writer, jsonReq("POST", "/api/v1/invitations", map[string]string{"email": "boss@acme.test", "role": "owner"}), 403)
	inv := e.must(t, admin, jsonReq("POST", "/api/v1/invitations", map[string]string{"email": "New@Acme.test", "role": "owner"}), 201).json(t)
	exp, _ := time.Parse(time.RFC3339, inv["expires_at"].(string))
	if !strings.HasPrefix(inv["link"].(string), "https://app.moat.test/invite/moat_i_") || inv["email"] != "new@acme.test" ||
		exp.Sub(e.now()) < 7*24*time.Hour-time.Minute || exp.Sub(e.now()) > 7*24*time.Hour {
		t.Errorf("invitation: %v", inv)
	}
	e.must(t, writer, jsonReq("POST", "/api/v1/invitations", map[string]string{"email": "dev@acme.test", "role": "admin"}), 201)
	invs := e.must(t, viewer, get("/api/v1/invitations"), 200)
	if len(invs.json(t)["invitations"].([]any)) != 2 || bytes.Contains(invs.body, []byte("moat_i_")) {
		t.Errorf("invitations: %s", invs.body)
	}
	invID := strconv.FormatFloat(inv["id"].(float64), 'f', 0, 64)
	e.must(t, viewer, del("/api/v1/invitations/"+invID), 403)
	e.must(t, admin, del("/api/v1/invitations/"+invID), 204)
	e.must(t, admin, del("/api/v1/invitations/"+invID), 404)

	// Removing a domain.
	e.must(t, viewer, del("/api/v1/domains/page0.example"), 403)
	e.must(t, admin, del("/api/v1/domains/page0.example"), 204)
	e.must(t, admin, del("/api/v1/domains/page0.example"), 404)

	// An operator sees every organization.
	op := e.operator(t)
	if orgs := e.must(t, op, get("/api/v1/orgs"), 200).json(t)["orgs"].([]any); len(orgs) != 2 {
		t.Errorf("operator: %v", orgs)
	}
	upload(op, []byte(`{"not":"a report"}`), "application/json", 201) // the operator's uploads are stored, invalid or not
}

func mustFloat(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return f
}

// checkCoverage fails unless every route answered its documented
// successes, and logs how many documented answers were seen.
func checkCoverage(t *testing.T, e *env) {
	t.Helper()
	s := e.spec
	documented, validated := 0, 0
	for _, rt := range api.Routes() {
		key := rt.Method + " " + rt.Pattern
		op, _ := s.at("#/paths/" + ptr(rt.Pattern) + "/" + strings.ToLower(rt.Method) + "/responses")
		for code := range op.(map[string]any) {
			n, _ := strconv.Atoi(code)
			documented++
			if s.seen[key][n] {
				validated++
			} else if n < 300 {
				t.Errorf("%s never answered its documented %d", key, n)
			}
		}
	}
	t.Logf("%d routes; %d of %d documented (route, status) answers seen and validated; %d kinds of answer seen in all",
		len(api.Routes()), validated, documented, len(s.seen))
}
