package web

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/hosting"
	"github.com/moatmail/moat/internal/store"
)

// overviewPageSize is the number of domains per page of the overview.
const overviewPageSize = 50

// overviewSorts are the columns the overview sorts by, with their titles.
var overviewSorts = []struct{ Key, Title string }{
	{"name", "Domain"}, {"mode", "Mode"}, {"expiry", "Certificate expires"},
	{"last_report", "Last report"}, {"failure_rate", "TLS failures (7 days)"}, {"grade", "Grade"},
}

type overviewData struct {
	Query    store.OverviewQuery
	Rows     []overviewRow
	Total    int64
	Orgs     []*store.Org // the organizations of the scope, when more than one
	Next     string       // the URL of the next page, "" on the last
	First    string       // the URL of the first page, "" on it
	Sorts    []sortLink
	CanWrite bool
}

type sortLink struct {
	Title, URL string
	Current    bool
	Desc       bool
}

// overviewRow is one domain of the overview, with what its cells show.
type overviewRow struct {
	*store.DomainSummary
	Org          string            // the display name of its organization
	Delegation   []delegationState // the names that are not right, from the last verify
	Verified     bool
	FailureRate  string
	FailureClass string // "ok", "warning" or "bad"
	ExpiryClass  string
}

type delegationState struct {
	Name, Status, Detail string
}

func (pg *pages) overview(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	v := r.URL.Query()
	q := store.OverviewQuery{
		Match: strings.ToLower(strings.TrimSpace(clip(v.Get("q"), 253))),
		Mode:  v.Get("mode"),
		Sort:  v.Get("sort"),
		Desc:  v.Get("desc") == "1",
		After: clip(v.Get("after"), 600),
		Limit: overviewPageSize,
		Now:   pg.now(),
	}
	var msg string
	switch q.Mode {
	case "", "testing", "enforce", "none":
	default:
		msg, q.Mode = "Unknown mode "+strconv.Quote(q.Mode)+": showing every mode.", ""
	}
	if !validSort(q.Sort) {
		q.Sort = "name"
	}
	if o := v.Get("org"); o != "" {
		id, err := strconv.ParseInt(o, 10, 64)
		if err != nil {
			pg.notFound(w, r, p, "such organization")
			return
		}
		q.Org = id
	}
	data := &overviewData{Query: q, CanWrite: p.Can(auth.PermWrite)}
	orgs, err := p.Tenant.Orgs(ctx)
	if err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	if len(orgs) > 1 {
		data.Orgs = orgs
	}
	if q.Org != 0 {
		if _, err := p.Tenant.Org(ctx, q.Org); err != nil {
			pg.storeFail(w, r, p, "such organization", err)
			return
		}
	}
	rows, err := p.Tenant.Overview(ctx, q)
	if err != nil {
		pg.storeFail(w, r, p, "overview", err)
		return
	}
	if data.Total, err = p.Tenant.CountDomains(ctx, q); err != nil {
		pg.storeFail(w, r, p, "overview", err)
		return
	}
	names := map[int64]string{}
	for _, o := range orgs {
		names[o.ID] = displayName(o)
	}
	for _, s := range rows {
		row := newOverviewRow(s, q.Now)
		row.Org = cmp.Or(names[s.OrgID], s.OrgName)
		data.Rows = append(data.Rows, row)
	}
	base := url.Values{}
	for _, k := range []string{"q", "mode", "org"} {
		if x := v.Get(k); x != "" {
			base.Set(k, x)
		}
	}
	for _, s := range overviewSorts {
		u := cloneValues(base)
		u.Set("sort", s.Key)
		cur := q.Sort == s.Key
		if cur && !q.Desc {
			u.Set("desc", "1")
		}
		data.Sorts = append(data.Sorts, sortLink{Title: s.Title, URL: "/?" + u.Encode(), Current: cur, Desc: cur && q.Desc})
	}
	page := cloneValues(base)
	page.Set("sort", q.Sort)
	if q.Desc {
		page.Set("desc", "1")
	}
	if q.After != "" {
		data.First = "/?" + page.Encode()
	}
	if len(rows) == overviewPageSize {
		page.Set("after", rows[len(rows)-1].Cursor)
		data.Next = "/?" + page.Encode()
	}
	pg.render(w, r, p, http.StatusOK, "overview", "overview", "Domains", data, msg, notice(r))
}

func validSort(s string) bool {
	for _, o := range overviewSorts {
		if o.Key == s {
			return true
		}
	}
	return false
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func newOverviewRow(s *store.DomainSummary, now time.Time) overviewRow {
	row := overviewRow{DomainSummary: s, FailureRate: "—", FailureClass: "muted"}
	if total := s.Sessions7d; total > 0 {
		rate := float64(s.Failed7d) / float64(total)
		row.FailureRate = strconv.FormatFloat(100*rate, 'f', 2, 64) + "%"
		switch {
		case s.Failed7d == 0:
			row.FailureClass = "ok"
		case rate < 0.01:
			row.FailureClass = "warning"
		default:
			row.FailureClass = "bad"
		}
	}
	switch {
	case s.CertExpires.IsZero():
	case s.CertExpires.Before(now):
		row.ExpiryClass = "bad"
	case s.CertExpires.Before(now.Add(14 * 24 * time.Hour)):
		row.ExpiryClass = "warning"
	default:
		row.ExpiryClass = "ok"
	}
	row.Delegation, row.Verified = delegationOf(s.VerifiedAt, s.Verify)
	return row
}

// delegationOf reads the stored result of the last verify: the names
// that are not right. verified is false when it was never verified or the
// result cannot be read.
func delegationOf(at time.Time, raw []byte) (bad []delegationState, verified bool) {
	if at.IsZero() || len(raw) == 0 {
		return nil, false
	}
	var checks []hosting.Check
	if err := json.Unmarshal(raw, &checks); err != nil {
		return nil, false
	}
	for _, c := range checks {
		if !c.OK() {
			bad = append(bad, delegationState{Name: shortRecordName(c.Name), Status: c.Status, Detail: c.Detail})
		}
	}
	return bad, true
}

// shortRecordName names a delegation record by its label:
// "_mta-sts.example.com." → "_mta-sts".
func shortRecordName(name string) string {
	switch {
	case strings.HasPrefix(name, "mta-sts."):
		return "mta-sts"
	case strings.HasPrefix(name, "_mta-sts."):
		return "_mta-sts"
	case strings.HasPrefix(name, "_smtp._tls."):
		return "_smtp._tls"
	}
	return name
}
