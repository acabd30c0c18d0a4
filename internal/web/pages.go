package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

// Pages returns the registration of the dashboard's pages, for
// Options.Pages: the overview, domains and their policies, TLS reports,
// DMARC summaries, senders, impact and reports, the intake ledger,
// checks and settings. Every page needs a signed-in
// principal and works within its Tenant: a name or id outside the scope
// is answered 404, as if it did not exist. Every page shows its data and
// every form works without JavaScript; htmx only swaps parts in place.
func Pages(deps api.Deps) func(*http.ServeMux, *Server) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return func(mux *http.ServeMux, s *Server) {
		pg := &pages{s: s, deps: deps, t: s.tmpl}
		for _, rt := range pg.routes() {
			mux.HandleFunc(rt.pattern, pg.handle(rt))
		}
	}
}

// pages are the dashboard's page handlers.
type pages struct {
	s    *Server
	deps api.Deps
	t    *templates
	dmarcCatalog
}

// route is one page or form action: its mux pattern, the permission it
// needs, and its handler, called with the principal.
type route struct {
	pattern string
	perm    string
	h       func(w http.ResponseWriter, r *http.Request, p *auth.Principal)
}

// routes is the one table of the dashboard's pages and actions; the
// isolation test walks it, so that a page without a test case fails.
func (pg *pages) routes() []route {
	return []route{
		{"GET /{$}", auth.PermRead, pg.overview},
		{"GET /domains/new", auth.PermWrite, pg.newDomainForm},
		{"POST /domains/new", auth.PermWrite, pg.addDomain},
		{"GET /domains/{name}", auth.PermRead, pg.domainPage},
		{"POST /domains/{name}", auth.PermWrite, pg.updateDomain},
		{"POST /domains/{name}/mx", auth.PermWrite, pg.liveMX},
		{"POST /domains/{name}/delete", auth.PermWrite, pg.deleteDomain},
		{"GET /domains/{name}/setup", auth.PermRead, pg.setupPage},
		{"POST /domains/{name}/verify", auth.PermWrite, pg.verify},
		{"GET /reports", auth.PermRead, pg.reports},
		{"GET /domains/{name}/reports", auth.PermRead, pg.reports},
		{"GET /reports/{id}", auth.PermRead, pg.reportPage},
		{"GET /dmarc", auth.PermRead, pg.dmarc},
		{"GET /domains/{name}/dmarc", auth.PermRead, pg.dmarc},
		{"GET /domains/{name}/dmarc/impact", auth.PermRead, pg.dmarcImpact},
		{"GET /dmarc/reports", auth.PermRead, pg.dmarcReports},
		{"GET /dmarc/reports/{id}", auth.PermRead, pg.dmarcReportPage},
		{"POST /dmarc/upload", auth.PermWrite, pg.dmarcUpload},
		{"GET /dmarc/failures", auth.PermRead, pg.failuresPage},
		{"GET /dmarc/failures/{id}", auth.PermRead, pg.failurePage},
		{"GET /intake", auth.PermRead, pg.intake},
		{"GET /checks", auth.PermRead, pg.checks},
		{"POST /checks", auth.PermWrite, pg.runCheck},
		{"GET /checks/{id}", auth.PermRead, pg.checkPage},
		{"GET /domains/{name}/checks", auth.PermRead, pg.checks},
		{"POST /domains/{name}/checks", auth.PermWrite, pg.runCheck},
		{"GET /settings", auth.PermRead, pg.settings},
		{"POST /settings/members/{user}", auth.PermMembers, pg.changeMember},
		{"POST /settings/invitations", auth.PermWrite, pg.invite},
		{"POST /settings/invitations/{id}/delete", auth.PermWrite, pg.withdrawInvitation},
		{"POST /settings/tokens", auth.PermWrite, pg.createToken},
		{"POST /settings/tokens/{id}/revoke", auth.PermWrite, pg.revokeToken},
		{"POST /settings/branding", auth.PermMembers, pg.branding},
		{"POST /settings/failure-key", auth.PermMembers, pg.setFailureKey},
		{"POST /settings/customers", auth.PermWrite, pg.createCustomer},
	}
}

// handle wraps a route: a visitor who is not signed in goes to the
// sign-in page, a principal without the permission gets 403.
func (pg *pages) handle(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := auth.FromContext(r.Context())
		if p == nil {
			pg.s.toLogin(w, r)
			return
		}
		if p.Tenant == nil || !p.Can(rt.perm) {
			pg.fail(w, r, p, http.StatusForbidden, "Your role does not allow this.")
			return
		}
		rt.h(w, r, p)
	}
}

// render writes a page of the dashboard for p.
func (pg *pages) render(w http.ResponseWriter, r *http.Request, p *auth.Principal, status int, name, nav, title string, data any, msgs ...string) {
	if r.Header.Get("HX-Request") == "true" && (status == http.StatusConflict || status == http.StatusUnprocessableEntity) {
		// A form answered in place by htmx: the page says what is wrong;
		// a 4xx would only add a network error to the browser's console.
		status = http.StatusOK
	}
	pd := pageData{Title: title, P: p, Nav: nav, Data: data}
	if len(msgs) > 0 {
		pd.Error = msgs[0]
	}
	if len(msgs) > 1 {
		pd.Notice = msgs[1]
	}
	pg.t.render(w, r, status, name, pd)
}

// fail answers an error as a page of the dashboard.
func (pg *pages) fail(w http.ResponseWriter, r *http.Request, p *auth.Principal, status int, msg string) {
	pg.render(w, r, p, status, "error", "", http.StatusText(status), msg, msg)
}

// notFound answers 404 for something outside the scope or absent: the
// two are not told apart.
func (pg *pages) notFound(w http.ResponseWriter, r *http.Request, p *auth.Principal, what string) {
	pg.fail(w, r, p, http.StatusNotFound, "There is no "+what+" here.")
}

// storeFail answers a store error: 404 for ErrNotFound, else 503.
func (pg *pages) storeFail(w http.ResponseWriter, r *http.Request, p *auth.Principal, what string, err error) {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, hosting.ErrInvalid) {
		pg.notFound(w, r, p, what)
		return
	}
	pg.s.log.Error("dashboard: store", "path", r.URL.Path, "err", err)
	pg.fail(w, r, p, http.StatusServiceUnavailable, "The database is not answering; try again shortly.")
}

// seeOther redirects after a successful form, with a notice in the query
// that the next page shows.
func seeOther(w http.ResponseWriter, r *http.Request, to, notice string) {
	if notice != "" {
		sep := "?"
		if strings.Contains(to, "?") {
			sep = "&"
		}
		to += sep + "notice=" + url.QueryEscape(notice)
	}
	http.Redirect(w, r, to, http.StatusSeeOther) //nolint:gosec // to is a path of ours, with validated names
}

// notice is the message a redirect after a form left in the query. It is
// shown as text (escaped): a crafted link can only show a harmless line.
func notice(r *http.Request) string { return clip(r.URL.Query().Get("notice"), 300) }

// hosting returns the hosting service within p's scope.
func (pg *pages) hosting(p *auth.Principal) *hosting.Service {
	return hosting.New(p.Tenant, pg.deps.Hosting, pg.deps.Now)
}

// domain returns the hosted domain {name} of the request within p's
// scope, or answers 404.
func (pg *pages) domain(w http.ResponseWriter, r *http.Request, p *auth.Principal) (*store.Domain, bool) {
	name, err := hosting.LookupName(r.PathValue("name"))
	if err != nil {
		pg.notFound(w, r, p, "such domain")
		return nil, false
	}
	d, err := p.Tenant.Domain(r.Context(), name)
	if err != nil {
		// The name is not repeated: the answer is the same for a domain
		// of another organization as for one that does not exist.
		pg.storeFail(w, r, p, "such domain", err)
		return nil, false
	}
	return d, true
}

// pathID parses the path value key as an id, or answers 404.
func (pg *pages) pathID(w http.ResponseWriter, r *http.Request, p *auth.Principal, key, what string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(key), 10, 64)
	if err != nil || id <= 0 {
		pg.notFound(w, r, p, what)
		return 0, false
	}
	return id, true
}

// now is the clock of the pages.
func (pg *pages) now() time.Time { return pg.deps.Now().UTC() }

func displayName(o *store.Org) string {
	if o.DisplayName != "" {
		return o.DisplayName
	}
	return o.Name
}

// day returns the UTC midnight of t's day.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dateRange reads since and until (YYYY-MM-DD, until inclusive) from the
// query, defaulting to the last days days ending today. It returns
// [since, until) as UTC midnights, and a message for a bad value.
func dateRange(r *http.Request, now time.Time, days int) (since, until time.Time, msg string) {
	until = day(now).AddDate(0, 0, 1)
	since = until.AddDate(0, 0, -days)
	q := r.URL.Query()
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return since, until, "The start date " + strconv.Quote(v) + " is not a date (YYYY-MM-DD)."
		}
		since = t
	}
	if v := q.Get("until"); v != "" {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return since, until, "The end date " + strconv.Quote(v) + " is not a date (YYYY-MM-DD)."
		}
		until = t.AddDate(0, 0, 1)
	}
	if !until.After(since) {
		return until.AddDate(0, 0, -days), until, "The end date is before the start date; showing the " + strconv.Itoa(days) + " days before the end."
	}
	if until.Sub(since) > 400*24*time.Hour {
		since = until.AddDate(0, 0, -400)
		msg = "The range is limited to 400 days."
	}
	return since, until, msg
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
