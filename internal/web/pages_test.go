package web

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moatmail/moat/internal/intake"
	"github.com/moatmail/moat/internal/store"
	"github.com/moatmail/moat/internal/tlsrpt"
)

// pagesEnv is one organization "acme" with an owner, an admin and a
// viewer, two hosted domains and reports for one of them.
func pagesEnv(t *testing.T) *env {
	e := newEnv(t)
	e.org("acme", "")
	e.user("owner@acme.example", "acme", store.RoleOwner)
	e.user("admin@acme.example", "acme", store.RoleAdmin)
	e.user("viewer@acme.example", "acme", store.RoleViewer)
	e.domain("acme.example", "acme")
	e.domain("other-acme.example", "acme")
	e.reports("acme.example", 20, "certificate-expired", 3)
	return e
}

const (
	owner  = "owner@acme.example"
	admin  = "admin@acme.example"
	viewer = "viewer@acme.example"
)

// TestPagesByRole: every page shows its data to every role, in the full
// page (no JavaScript needed), and the forms that change things only to
// the roles allowed to use them.
func TestPagesByRole(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	pages := []struct {
		path  string
		data  []string // shown to everyone
		forms []string // shown to writers only
	}{
		{"/", []string{"acme.example", "other-acme.example", "20260430T120000Z", "not verified", "1.41%"}, []string{`href="/domains/new"`}},
		{"/domains/acme.example", []string{"mx1.acme.example", "Not ready to enforce yet", "certificate-expired", `id="versions"`}, []string{"Save policy", "live MX records</button>", "Remove acme.example"}},
		{"/domains/acme.example/setup", []string{"_mta-sts.acme.example. CNAME acme.example._mta-sts.sts.moat.test.", `data-copy="rec-0"`}, []string{"Verify the records"}},
		{"/reports", []string{"Sessions per day", "data:image/svg&#43;xml;base64,", "certificate-expired", "Google LLC", "192.0.2.10", "mx2.acme.example", `id="by-domain"`}, nil},
		{"/domains/acme.example/reports", []string{"TLS reports of acme.example", "2026-05-19", "policy: version 1"}, nil},
		{"/intake", []string{"198.51.100.7", "stored", "Google LLC", "Senders gone silent"}, nil},
		{"/checks", []string{"Your domains by grade", "acme.example"}, []string{"Run the check"}},
		{"/domains/acme.example/checks", []string{"Never checked"}, []string{"Run the check now"}},
		{"/settings", []string{"owner@acme.example", "viewer@acme.example"}, []string{"Create token", "Invite"}},
	}
	for _, who := range []string{owner, admin, viewer} {
		for _, pg := range pages {
			r := e.do(who, "GET", pg.path, nil)
			if r.Code != http.StatusOK {
				t.Errorf("%s GET %s: %d", who, pg.path, r.Code)
				continue
			}
			if !strings.HasPrefix(r.Body, "<!doctype html>") {
				t.Errorf("%s GET %s: not a full page", who, pg.path)
			}
			r.has(t, pg.data...)
			if who == viewer {
				r.lacks(t, pg.forms...)
			} else {
				r.has(t, pg.forms...)
			}
		}
	}
	// Branding and role changes are the owners'.
	e.do(owner, "GET", "/settings", nil).has(t, "Save branding", "Change role")
	e.do(admin, "GET", "/settings", nil).lacks(t, "Save branding", "Change role")
}

// TestPagesNeedSignIn: every page sends a visitor to the sign-in page and
// back; an htmx request gets HX-Redirect.
func TestPagesNeedSignIn(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	for _, rt := range (&pages{}).routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.NewReplacer("{$}", "", "{name}", "acme.example", "{id}", "1", "{user}", "1").Replace(path)
		r := e.do("", method, path, url.Values{})
		if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login?next=") {
			t.Errorf("%s %s: %d %s", method, path, r.Code, r.Header.Get("Location"))
		}
	}
	r := e.do("", "GET", "/reports?since=2026-05-01", nil, "HX-Request", "true")
	if r.Code != http.StatusUnauthorized || r.Header.Get("HX-Redirect") != "/login?next=%2Freports%3Fsince%3D2026-05-01" {
		t.Errorf("htmx: %d %q", r.Code, r.Header.Get("HX-Redirect"))
	}
}

// TestViewerChangesNothing: a viewer's form posts are refused and leave
// the store as it was.
func TestViewerChangesNothing(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	before := snapshotOrg(t, e, "acme")
	posts := map[string]url.Values{
		"/domains/new":                 {"name": {"new.example"}, "mx": {"mx.new.example"}, "mode": {"testing"}},
		"/domains/acme.example":        {"mode": {"none"}, "mx": {""}, "max_age": {"100"}},
		"/domains/acme.example/delete": {"confirm": {"acme.example"}},
		"/domains/acme.example/verify": {},
		"/domains/acme.example/checks": {},
		"/settings/tokens":             {"name": {"x"}, "scope": {"write"}},
		"/settings/invitations":        {"email": {"x@example.com"}, "role": {"admin"}},
		"/settings/customers":          {"name": {"cust"}},
		"/settings/branding":           {"display_name": {"Hacked"}, "accent": {"#ff0000"}},
		"/settings/members/1":          {"role": {"viewer"}},
	}
	for path, form := range posts {
		if r := e.do(viewer, "POST", path, form); r.Code != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d", path, r.Code)
		}
	}
	// An admin may not change roles nor branding.
	for _, path := range []string{"/settings/members/1", "/settings/branding"} {
		if r := e.do(admin, "POST", path, posts[path]); r.Code != http.StatusForbidden {
			t.Errorf("admin POST %s: %d", path, r.Code)
		}
	}
	if after := snapshotOrg(t, e, "acme"); after != before {
		t.Errorf("the store changed:\n%s\n---\n%s", before, after)
	}
}

func TestAddDomain(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	for _, tc := range []struct {
		form  url.Values
		code  int
		field string
		msg   string
	}{
		{url.Values{"name": {"not a domain"}, "mx": {"mx.example.com"}, "mode": {"testing"}}, 422, `id="name-err"`, "invalid domain name"},
		{url.Values{"name": {"new.example"}, "mx": {""}, "mode": {"testing"}}, 422, `id="mx-err"`, "at least one MX pattern is required"},
		{url.Values{"name": {"new.example"}, "mx": {"mx..example"}, "mode": {"testing"}}, 422, `id="mx-err"`, "invalid mx"},
		{url.Values{"name": {"new.example"}, "mx": {"mx.new.example"}, "mode": {"strict"}}, 422, `id="mode-err"`, "want testing, enforce or none"},
		{url.Values{"name": {"new.example"}, "mx": {"mx.new.example"}, "max_age": {"soon"}}, 422, `id="max_age-err"`, "whole number of seconds"},
		{url.Values{"name": {"new.example"}, "mx": {"mx.new.example"}, "max_age": {"99999999"}}, 422, `id="max_age-err"`, "RFC 8461 §3.2"},
		{url.Values{"name": {"acme.example"}, "mx": {"mx.new.example"}}, 409, `id="name-err"`, "hosted by Moat already"},
	} {
		r := e.do(admin, "POST", "/domains/new", tc.form)
		if r.Code != tc.code {
			t.Errorf("%v: %d, want %d", tc.form, r.Code, tc.code)
		}
		r.has(t, tc.field, tc.msg, `aria-invalid="true"`)
	}
	r := e.do(admin, "POST", "/domains/new", url.Values{"name": {"New.Example."}, "mx": {"mx1.new.example\n*.mail.new.example"}, "mode": {"testing"}, "max_age": {"86400"}})
	if r.Code != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/domains/new.example/setup?notice=") {
		t.Fatalf("add: %d %s", r.Code, r.Header.Get("Location"))
	}
	d, err := e.st.Domain(context.Background(), "new.example")
	if err != nil || d.OrgID != e.orgs["acme"].ID || d.MaxAge != 86400 || len(d.MX) != 2 {
		t.Fatalf("stored %+v, %v", d, err)
	}
	r = e.do(admin, "GET", r.Header.Get("Location"), nil)
	r.has(t, "new.example is added", "mta-sts.new.example. CNAME mta-sts.moat.test.", "_smtp._tls.new.example. CNAME new.example._smtp._tls.sts.moat.test.",
		`data-copy="rec-0"`, `data-copy="rec-1"`, `data-copy="rec-2"`, "Not verified yet")
}

func TestVerify(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	// mta-sts is right (with an address at the policy host), _mta-sts is
	// missing, _smtp._tls points elsewhere.
	if err := e.dns.Set(`
mta-sts.acme.example. CNAME mta-sts.moat.test.
mta-sts.moat.test. A 192.0.2.1
_smtp._tls.acme.example. CNAME tlsrpt.elsewhere.example.
tlsrpt.elsewhere.example. TXT "v=TLSRPTv1; rua=mailto:x@elsewhere.example"
`); err != nil {
		t.Fatal(err)
	}
	// htmx: the fragment only, with the verdict of each record.
	r := e.do(admin, "POST", "/domains/acme.example/verify", url.Values{}, "HX-Request", "true")
	if r.Code != http.StatusOK || strings.Contains(r.Body, "<html") {
		t.Fatalf("htmx verify: %d, full page: %v", r.Code, strings.Contains(r.Body, "<html"))
	}
	r.has(t, `id="verify"`, "mta-sts.acme.example.", "state-ok", "missing", "wrong", "CNAME points to tlsrpt.elsewhere.example.",
		"publish _mta-sts.acme.example.\tCNAME\tacme.example._mta-sts.sts.moat.test.")
	// Without JavaScript: the whole page with the same result.
	r = e.do(admin, "POST", "/domains/acme.example/verify", url.Values{})
	if !strings.HasPrefix(r.Body, "<!doctype html>") {
		t.Error("verify without htmx is not a full page")
	}
	r.has(t, "CNAME points to tlsrpt.elsewhere.example.")
	// The result is kept: the overview and the setup page show it.
	e.do(viewer, "GET", "/", nil).has(t, "_mta-sts missing", "_smtp._tls wrong")
	e.do(viewer, "GET", "/domains/acme.example/setup", nil).has(t, "Looked up 2026-05-20 12:00 UTC", "CNAME points to tlsrpt.elsewhere.example.")
}

func TestEnforceNeedsConfirmation(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	form := url.Values{"mode": {"enforce"}, "mx": {"mx1.acme.example\nmx2.acme.example"}, "max_age": {"604800"}}
	r := e.do(admin, "POST", "/domains/acme.example", form)
	if r.Code != http.StatusConflict {
		t.Fatalf("enforce against the verdict: %d", r.Code)
	}
	r.has(t, "not ready for enforce", "certificate-expired", `name="confirm" value="yes"`)
	if d, _ := e.st.Domain(context.Background(), "acme.example"); d.Mode != "testing" {
		t.Fatalf("mode changed without confirmation: %s", d.Mode)
	}
	form.Set("confirm", "yes")
	r = e.do(admin, "POST", "/domains/acme.example", form)
	if r.Code != http.StatusSeeOther {
		t.Fatalf("confirmed: %d %s", r.Code, r.Body)
	}
	r = e.do(admin, "GET", r.Header.Get("Location"), nil)
	r.has(t, "Saved: policy version 2", `<span class="mode mode-enforce">enforce</span>`)
	r.lacks(t, "ready to enforce")
	// A domain without failures but too few reports is not ready either.
	r = e.do(admin, "POST", "/domains/other-acme.example", url.Values{"mode": {"enforce"}, "mx": {"mx1.other-acme.example"}, "max_age": {"604800"}})
	if r.Code != http.StatusConflict {
		t.Errorf("no reports: %d", r.Code)
	}
	r.has(t, "no TLS report shows MTA-STS sessions")
	// Validation messages in place.
	r = e.do(admin, "POST", "/domains/other-acme.example", url.Values{"mode": {"testing"}, "mx": {"*.*.example"}, "max_age": {"-1"}})
	if r.Code != http.StatusUnprocessableEntity {
		t.Errorf("invalid: %d", r.Code)
	}
	r.has(t, `id="max_age-err"`)
}

func TestLiveMX(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	if err := e.dns.Set(`
acme.example. MX 20 backup.mail.example.
acme.example. MX 10 primary.mail.example.
`); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"mode": {"testing"}, "mx": {"old.example"}, "max_age": {"3600"}}
	r := e.do(admin, "POST", "/domains/acme.example/mx", form, "HX-Request", "true")
	if r.Code != http.StatusOK || strings.Contains(r.Body, "<html") {
		t.Fatalf("htmx: %d", r.Code)
	}
	r.has(t, `id="policy-form"`, "primary.mail.example\nbackup.mail.example</textarea>", `value="3600"`, "Save to apply them")
	if d, _ := e.st.Domain(context.Background(), "acme.example"); d.MX[0] != "mx1.acme.example" {
		t.Error("the MX lookup saved the policy")
	}
	r = e.do(admin, "POST", "/domains/other-acme.example/mx", form)
	r.has(t, "other-acme.example has no MX records in DNS.", `id="mx-err"`)
}

func TestDeleteDomain(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	r := e.do(admin, "POST", "/domains/other-acme.example/delete", url.Values{"confirm": {"acme.example"}})
	if r.Code != http.StatusUnprocessableEntity {
		t.Fatalf("wrong confirmation: %d", r.Code)
	}
	r.has(t, "type its name, other-acme.example, to confirm")
	r = e.do(admin, "POST", "/domains/other-acme.example/delete", url.Values{"confirm": {"other-acme.example"}})
	if r.Code != http.StatusSeeOther {
		t.Fatalf("delete: %d", r.Code)
	}
	if _, err := e.st.Domain(context.Background(), "other-acme.example"); err == nil {
		t.Error("still hosted")
	}
	if r := e.do(admin, "GET", "/domains/other-acme.example", nil); r.Code != http.StatusNotFound {
		t.Errorf("after delete: %d", r.Code)
	}
}

func TestReportsPages(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	if err := e.st.RecordCertificate(context.Background(), "acme.example", testNow.Add(-5*24*time.Hour), testNow.Add(85*24*time.Hour), "issued by Test CA"); err != nil {
		t.Fatal(err)
	}
	r := e.do(viewer, "GET", "/domains/acme.example/reports?since=2026-05-01&until=2026-05-19", nil)
	r.has(t, `value="2026-05-01"`, `value="2026-05-19"`, `id="sessions-chart"`, "certificate: issued by Test CA", "with the days of policy changes and certificate events marked")
	// The chart's numbers in the table beside it: 100 + 110 successful on
	// a day without failures.
	r.has(t, `<th scope="row">2026-05-10</th><td class="num">210</td><td class="num">0</td>`)
	// The drill-down from a failure type.
	r.has(t, `href="/domains/acme.example/reports?since=2026-05-01&amp;until=2026-05-19&amp;result=certificate-expired#drill"`)
	r = e.do(viewer, "GET", "/domains/acme.example/reports?result=certificate-expired", nil)
	r.has(t, `id="drill"`, "18 sessions", "X509_V_ERR_CERT_HAS_EXPIRED", "seen by Google LLC")
	// Bad dates say so and fall back.
	e.do(viewer, "GET", "/reports?since=yesterday", nil).has(t, "is not a date")
	// The raw report.
	m := regexp.MustCompile(`href="/reports/(\d+)"`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatal("no report link")
	}
	r = e.do(viewer, "GET", "/reports/"+m[1], nil)
	if r.Code != http.StatusOK {
		t.Fatalf("report: %d", r.Code)
	}
	r.has(t, `id="raw-report"`, "&#34;organization-name&#34;: &#34;", "198.51.100.7")
	if r := e.do(viewer, "GET", "/reports/999999", nil); r.Code != http.StatusNotFound {
		t.Errorf("absent report: %d", r.Code)
	}
}

func TestIntakeLedger(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	e.domain("silent.example", "acme")
	ids := e.reports("silent.example", 16, "", 0)
	if len(ids) == 0 {
		t.Fatal("no reports")
	}
	r := e.do(viewer, "GET", "/intake", nil)
	r.has(t, `id="intake-log"`, "silent.example", "https", "198.51.100.7", "stored")
	r = e.do(viewer, "GET", "/intake?outcome=invalid", nil)
	r.has(t, "Nothing arrived that matches the filter")
	r = e.do(viewer, "GET", "/intake?source=carrier-pigeon", nil)
	r.has(t, "Unknown path")
}

func TestSilentSenders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.org("acme", "")
	e.user(owner, "acme", store.RoleOwner)
	e.domain("acme.example", "acme")
	// Reports for the 14 days before yesterday: nothing in the last two days.
	ids := e.reportsBetween("acme.example", 15, 2)
	if len(ids) == 0 {
		t.Fatal("no reports")
	}
	r := e.do(owner, "GET", "/intake", nil)
	r.has(t, `<th scope="row">Google LLC</th><td class="num">14 of 14</td>`, "Microsoft Corporation")
	r.lacks(t, "None: every regular sender")
}

func TestChecks(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	if err := e.dns.Set(`
acme.example. TXT "v=spf1 -all"
_dmarc.acme.example. TXT "v=DMARC1; p=reject"
acme.example. MX 0 .
`); err != nil {
		t.Fatal(err)
	}
	var loc string
	for range 2 {
		r := e.do(admin, "POST", "/domains/acme.example/checks", url.Values{})
		if r.Code != http.StatusSeeOther {
			t.Fatalf("check: %d %s", r.Code, r.Body)
		}
		loc = r.Header.Get("Location")
	}
	r := e.do(viewer, "GET", loc, nil)
	r.has(t, "Check of acme.example", "grade grade-", "Impersonation (SPF, DKIM, DMARC)", "Why: ", `class="finding sev-`)
	r = e.do(viewer, "GET", "/domains/acme.example/checks", nil)
	r.has(t, `id="grade-chart"`, `id="check-history"`, "The latest check")
	// Any domain may be checked from /checks; a bad name says why.
	r = e.do(admin, "POST", "/checks", url.Values{"domain": {"not a domain"}})
	if r.Code != http.StatusUnprocessableEntity {
		t.Errorf("bad name: %d", r.Code)
	}
	r.has(t, `id="domain-err"`)
}

func TestSettingsTokens(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	r := e.do(admin, "POST", "/settings/tokens", url.Values{"name": {"monitoring"}, "scope": {"read"}})
	if r.Code != http.StatusOK {
		t.Fatalf("create: %d", r.Code)
	}
	secret := regexp.MustCompile(`id="token-secret">(moat_t_[^<]+)<`).FindStringSubmatch(r.Body)
	if secret == nil {
		t.Fatal("secret not shown")
	}
	// Shown once: the settings page lists the token by its prefix only.
	r = e.do(admin, "GET", "/settings", nil)
	r.has(t, "monitoring", secret[1][:12]+"…")
	r.lacks(t, secret[1])
	// The token works for the API side of the server, and its use shows.
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("Authorization", "Bearer "+secret[1])
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("bearer: %d", w.Code)
	}
	e.do(admin, "GET", "/settings", nil).lacks(t, "<td>never</td>")
	toks, _ := e.st.Scoped(store.Scope{Operator: true}).Tokens(context.Background(), e.orgs["acme"].ID)
	r = e.do(admin, "POST", "/settings/tokens/"+itoa(toks[0].ID)+"/revoke", url.Values{})
	if r.Code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.Code)
	}
	e.do(admin, "GET", "/settings", nil).has(t, "revoked 2026-05-20")
	// Validation.
	e.do(admin, "POST", "/settings/tokens", url.Values{"name": {""}, "scope": {"read"}}).has(t, `id="token-err"`, "Name the token")
	e.do(admin, "POST", "/settings/tokens", url.Values{"name": {"x"}, "scope": {"root"}}).has(t, "read or write")
}

func TestSettingsInvitationsAndMembers(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	r := e.do(admin, "POST", "/settings/invitations", url.Values{"email": {"new@acme.example"}, "role": {"viewer"}})
	link := regexp.MustCompile(`id="invite-link">(http://moat.test/invite/moat_i_[^<]+)<`).FindStringSubmatch(r.Body)
	if link == nil {
		t.Fatalf("no link: %d", r.Code)
	}
	e.do(admin, "GET", "/settings", nil).has(t, "new@acme.example")
	// An admin may not invite owners; a bad address is refused.
	if r := e.do(admin, "POST", "/settings/invitations", url.Values{"email": {"boss@acme.example"}, "role": {"owner"}}); r.Code != http.StatusForbidden {
		t.Errorf("admin invites owner: %d", r.Code)
	}
	e.do(admin, "POST", "/settings/invitations", url.Values{"email": {"nobody"}, "role": {"viewer"}}).has(t, `id="invite-err"`)
	invs, _ := e.st.Scoped(store.Scope{Operator: true}).Invitations(context.Background(), e.orgs["acme"].ID)
	if len(invs) != 1 {
		t.Fatalf("%d invitations", len(invs))
	}
	if r := e.do(admin, "POST", "/settings/invitations/"+itoa(invs[0].ID)+"/delete", url.Values{}); r.Code != http.StatusSeeOther {
		t.Fatalf("withdraw: %d", r.Code)
	}
	if r := e.do("", "GET", strings.TrimPrefix(link[1], "http://moat.test"), nil); r.Code != http.StatusNotFound {
		t.Errorf("withdrawn link: %d", r.Code)
	}
	// The last owner can be neither demoted nor removed.
	ow := itoa(e.users[owner].ID)
	r = e.do(owner, "POST", "/settings/members/"+ow, url.Values{"action": {"role"}, "role": {"admin"}})
	if r.Code != http.StatusConflict {
		t.Errorf("demote the last owner: %d", r.Code)
	}
	r.has(t, "is the last owner")
	if r := e.do(owner, "POST", "/settings/members/"+ow, url.Values{"action": {"remove"}}); r.Code != http.StatusConflict {
		t.Errorf("remove the last owner: %d", r.Code)
	}
	// An owner makes the admin owner, then may step down.
	if r := e.do(owner, "POST", "/settings/members/"+itoa(e.users[admin].ID), url.Values{"action": {"role"}, "role": {"owner"}}); r.Code != http.StatusSeeOther {
		t.Fatalf("promote: %d", r.Code)
	}
	if r := e.do(owner, "POST", "/settings/members/"+ow, url.Values{"action": {"role"}, "role": {"viewer"}}); r.Code != http.StatusSeeOther {
		t.Fatalf("step down: %d", r.Code)
	}
	e.do(admin, "GET", "/settings", nil).has(t, "Save branding")
	if r := e.do(admin, "POST", "/settings/members/"+itoa(e.users[viewer].ID), url.Values{"action": {"remove"}}); r.Code != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.Code)
	}
	e.do(admin, "GET", "/settings", nil).lacks(t, viewer)
}

func TestSettingsBranding(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	post := func(fields map[string]string, name string, file []byte) *resp {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for k, v := range fields {
			_ = mw.WriteField(k, v)
		}
		if file != nil {
			fw, _ := mw.CreateFormFile("logo", name)
			_, _ = fw.Write(file)
		}
		_ = mw.Close()
		req := httptest.NewRequest("POST", "/settings/branding", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.AddCookie(&http.Cookie{Name: "moat_session", Value: e.cookies[owner]})
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		return &resp{Code: w.Code, Body: w.Body.String(), Header: w.Header()}
	}
	// A text file named .png is refused by its content.
	if r := post(map[string]string{"display_name": "ACME", "accent": "#123456"}, "logo.png", []byte("not an image")); r.Code != http.StatusUnprocessableEntity {
		t.Errorf("text logo: %d", r.Code)
	}
	if r := post(map[string]string{"accent": "red"}, "", nil); r.Code != http.StatusUnprocessableEntity || !strings.Contains(r.Body, "#rrggbb") {
		t.Errorf("bad colour: %d", r.Code)
	}
	if r := post(map[string]string{"accent": "#123456"}, "big.png", append(pngBuf.Bytes(), make([]byte, 300<<10)...)); r.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("big logo: %d", r.Code)
	}
	if r := post(map[string]string{"display_name": "ACME Corp.", "accent": "#123456"}, "logo.png", pngBuf.Bytes()); r.Code != http.StatusSeeOther {
		t.Fatalf("branding: %d %s", r.Code, r.Body)
	}
	r := e.do(viewer, "GET", "/", nil)
	r.has(t, "ACME Corp.", `/theme/`+itoa(e.orgs["acme"].ID)+`.css?c=%23123456`, `src="/logo/`+itoa(e.orgs["acme"].ID)+`"`)
	if r := e.do(viewer, "GET", "/logo/"+itoa(e.orgs["acme"].ID), nil); r.Code != http.StatusOK || r.Header.Get("Content-Type") != "image/png" {
		t.Errorf("logo: %d %s", r.Code, r.Header.Get("Content-Type"))
	}
	// An SVG logo is told by its content, after an XML declaration.
	svg := []byte(`<?xml version="1.0"?>` + "\n" + `<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>`)
	if got := logoMediaType(svg); got != "image/svg+xml" {
		t.Errorf("svg: %q", got)
	}
	if got := logoMediaType([]byte("<html><svg/></html>")); got != "" {
		t.Errorf("html: %q", got)
	}
}

func TestCustomers(t *testing.T) {
	t.Parallel()
	e := pagesEnv(t)
	r := e.do(admin, "POST", "/settings/customers", url.Values{"name": {"bolt"}, "display_name": {"Bolt GmbH"}})
	if r.Code != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	r = e.do(admin, "GET", "/settings", nil)
	r.has(t, "Bolt GmbH", "Switch to Bolt GmbH")
	e.do(admin, "POST", "/settings/customers", url.Values{"name": {"Bad Name"}}).has(t, "The short name is 1 to 63")
	e.do(admin, "POST", "/settings/customers", url.Values{"name": {"acme"}}).has(t, "is taken")
	// The MSP adds a domain for the customer, which shows with its org
	// column on the MSP's overview.
	bolt, err := e.st.OrgByName(context.Background(), "bolt")
	if err != nil {
		t.Fatal(err)
	}
	r = e.do(admin, "POST", "/domains/new", url.Values{"name": {"bolt.example"}, "mx": {"mx.bolt.example"}, "org": {itoa(bolt.ID)}})
	if r.Code != http.StatusSeeOther {
		t.Fatalf("add for customer: %d", r.Code)
	}
	r = e.do(admin, "GET", "/", nil)
	r.has(t, "bolt.example", "<td>Bolt GmbH</td>", `<th scope="col">Organization</th>`)
	e.do(admin, "GET", "/?org="+itoa(bolt.ID), nil).lacks(t, "other-acme.example")
	// The MSP's viewer does not manage customers.
	e.do(viewer, "GET", "/", nil).lacks(t, "bolt.example")
	// Switching into the customer.
	r = e.do(admin, "POST", "/switch", url.Values{"org": {itoa(bolt.ID)}, "next": {"/"}})
	if r.Code != http.StatusSeeOther {
		t.Fatalf("switch: %d", r.Code)
	}
	r = e.do(admin, "GET", "/", nil)
	r.has(t, "bolt.example")
	r.lacks(t, "other-acme.example")
}

// TestOverviewPages: the overview pages through the store's cursor, a
// page at a time, sorted either way, filtered.
func TestOverviewPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.org("acme", "")
	e.user(owner, "acme", store.RoleOwner)
	for i := range 2*overviewPageSize + 20 {
		e.domain(fmt.Sprintf("d%03d.example", i), "acme")
	}
	rowRE := regexp.MustCompile(`<th scope="row"><a href="/domains/(d\d+\.example)">`)
	nextRE := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	for _, tc := range []struct {
		start, first, last string
	}{
		{"/", "d000.example", "d119.example"},
		{"/?sort=name&desc=1", "d119.example", "d000.example"},
	} {
		var seen []string
		next := tc.start
		for pages := 0; next != ""; pages++ {
			if pages > 3 {
				t.Fatal("too many pages")
			}
			r := e.do(owner, "GET", next, nil)
			for _, m := range rowRE.FindAllStringSubmatch(r.Body, -1) {
				seen = append(seen, m[1])
			}
			next = ""
			if m := nextRE.FindStringSubmatch(r.Body); m != nil {
				next = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		if len(seen) != 120 || seen[0] != tc.first || seen[119] != tc.last {
			t.Errorf("%s: %d domains, %v … %v", tc.start, len(seen), seen[:1], seen[len(seen)-1:])
		}
	}
	r := e.do(owner, "GET", "/?q=d11&mode=testing", nil)
	if n := len(rowRE.FindAllString(r.Body, -1)); n != 10 {
		t.Errorf("filter d11: %d rows", n)
	}
	r.has(t, `value="d11"`, `<option value="testing" selected>`)
	e.do(owner, "GET", "/?mode=strict", nil).has(t, "Unknown mode")
}

// BenchmarkOverview10k renders the first page and a later page of the
// overview of 10,000 domains.
func BenchmarkOverview10k(b *testing.B) {
	e := newEnv(b)
	e.org("acme", "")
	e.user(owner, "acme", store.RoleOwner)
	for i := range 10000 {
		e.domain(fmt.Sprintf("bench%05d.example", i), "acme")
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		path := "/?sort=failure_rate&desc=1"
		if i%2 == 1 {
			path = "/?q=bench07"
		}
		if r := e.do(owner, "GET", path, nil); r.Code != http.StatusOK {
			b.Fatal(r.Code)
		}
	}
}

// The tables of sources, MXs and domains of the reports page show the
// tableRows rows with the most failures and link to the page with all of
// them; a domain's link keeps the period.
func TestReportsPageCutsLongTables(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.org("acme", "")
	e.user(viewer, "acme", store.RoleViewer)
	var batch []*store.TLSRPTReport
	day := time.Date(testNow.Year(), testNow.Month(), testNow.Day()-2, 0, 0, 0, 0, time.UTC)
	for i := range tableRows + 5 {
		domain := fmt.Sprintf("d%03d.example", i)
		e.domain(domain, "acme")
		r := &tlsrpt.Report{
			OrganizationName: "Google LLC", ReportID: "r-" + domain,
			DateRange: tlsrpt.DateRange{Start: day, End: day.Add(24*time.Hour - time.Second)},
			Policies: []tlsrpt.PolicyResult{{
				Policy:  tlsrpt.Policy{Type: tlsrpt.PolicySTS, Domain: domain, MXHost: []string{"mx." + domain}},
				Summary: tlsrpt.Summary{Successful: 10, Failure: int64(1 + i)},
				FailureDetails: []tlsrpt.FailureDetail{{ResultType: "certificate-expired", SendingMTAIP: fmt.Sprintf("192.0.2.%d", i),
					ReceivingMXHostname: "mx." + domain, FailedSessionCount: int64(1 + i)}},
			}},
		}
		batch = append(batch, intake.StoredReport([]byte(`{"report-id":"r-`+domain+`"}`), r, day.Add(25*time.Hour), "https", "198.51.100.7", func(string) bool { return true }))
	}
	if _, err := e.st.InsertTLSRPT(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	period := "since=" + day.Format(time.DateOnly) + "&until=" + day.Format(time.DateOnly)
	r := e.do(viewer, "GET", "/reports?"+period, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("reports: %d", r.Code)
	}
	total := tableRows + 5
	// The successes come without an IP or MX: one more row each.
	r.has(t, fmt.Sprintf("The %d sources with the most failures of %d.", tableRows, total+1),
		fmt.Sprintf("The %d MXs with the most failures of %d.", tableRows, total+1),
		fmt.Sprintf("The %d domains with the most failures of %d.", tableRows, total),
		`href="/reports?since=`+day.Format(time.DateOnly)+`&amp;until=`+day.Format(time.DateOnly)+`&amp;all=1#domains-h"`,
		// The most failures first; the domain link keeps the period.
		fmt.Sprintf(`href="/domains/d%03d.example/reports?since=%s&amp;until=%s"`, total-1, day.Format(time.DateOnly), day.Format(time.DateOnly)))
	if n := strings.Count(r.Body, `<a href="/domains/d`); n != tableRows {
		t.Errorf("%d domain rows, want %d", n, tableRows)
	}
	if strings.Contains(r.Body, "d000.example") {
		t.Error("the domain with the fewest failures is shown in the cut table")
	}
	r = e.do(viewer, "GET", "/reports?"+period+"&all=1", nil)
	if n := strings.Count(r.Body, `<a href="/domains/d`); n != total {
		t.Errorf("all=1: %d domain rows, want %d", n, total)
	}
	if strings.Contains(r.Body, "with the most failures of") {
		t.Error("all=1 still says the table is cut")
	}
}
