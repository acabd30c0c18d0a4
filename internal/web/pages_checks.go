package web

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moatmail/moat/internal/api"
	"github.com/moatmail/moat/internal/auth"
	"github.com/moatmail/moat/internal/check"
	"github.com/moatmail/moat/internal/dnsname"
	"github.com/moatmail/moat/internal/store"
)

// checkHistory is the number of stored checks the grade chart shows.
const checkHistory = 100

type checksData struct {
	Domain   *store.Domain // nil on /checks
	Name     string        // the domain typed into the form
	Hosted   []*store.DomainSummary
	History  []*store.CheckRecord // newest first
	Chart    template.URL
	Latest   *checkView
	CanWrite bool
	Error    string // the form's message
}

// checkView is a stored check with its report decoded, findings grouped
// by pillar.
type checkView struct {
	Record  *store.CheckRecord
	Report  *check.Report
	Pillars []pillarView
}

type pillarView struct {
	check.Pillar
	Title    string
	Findings []check.Finding
}

func (pg *pages) checks(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	data := &checksData{CanWrite: p.Can(auth.PermWrite)}
	if r.PathValue("name") == "" {
		rows, err := p.Tenant.Overview(ctx, store.OverviewQuery{Sort: "grade", Limit: overviewPageSize, Now: pg.now()})
		if err != nil {
			pg.storeFail(w, r, p, "domains", err)
			return
		}
		data.Hosted = rows
		pg.render(w, r, p, http.StatusOK, "checks", "checks", "Check a domain", data, "", notice(r))
		return
	}
	d, ok := pg.domain(w, r, p)
	if !ok {
		return
	}
	data.Domain, data.Name = d, d.Name
	hist, err := p.Tenant.Checks(ctx, d.Name, checkHistory)
	if err != nil {
		pg.storeFail(w, r, p, "checks", err)
		return
	}
	data.History = hist
	var pts []gradePoint
	for _, c := range slices.Backward(hist) {
		pts = append(pts, gradePoint{At: c.CheckedAt, Score: c.Score, Grade: c.Grade})
	}
	if data.Chart, err = scoreChart(pts); err != nil {
		pg.s.log.Error("dashboard: chart", "err", err)
	}
	if len(hist) > 0 {
		c, err := p.Tenant.Check(ctx, hist[0].ID)
		if err != nil {
			pg.storeFail(w, r, p, "check", err)
			return
		}
		data.Latest = newCheckView(c)
	}
	pg.render(w, r, p, http.StatusOK, "checks", "checks", "Checks of "+d.Name, data, "", notice(r))
}

func newCheckView(c *store.CheckRecord) *checkView {
	v := &checkView{Record: c}
	var rep check.Report
	if json.Unmarshal(c.Report, &rep) != nil {
		return v
	}
	v.Report = &rep
	for _, pl := range rep.Pillars {
		pv := pillarView{Pillar: pl, Title: pillarTitle(pl.Name)}
		for _, f := range rep.Findings {
			if f.Pillar == pl.Name {
				pv.Findings = append(pv.Findings, f)
			}
		}
		v.Pillars = append(v.Pillars, pv)
	}
	return v
}

func pillarTitle(name string) string {
	switch name {
	case "impersonation":
		return "Impersonation (SPF, DKIM, DMARC)"
	case "transport":
		return "Transport security (MTA-STS, TLS-RPT, STARTTLS)"
	case "brand":
		return "Brand (BIMI)"
	}
	return name
}

func (pg *pages) runCheck(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	ctx := r.Context()
	orgID := p.Org.ID
	var name string
	if r.PathValue("name") != "" {
		d, ok := pg.domain(w, r, p)
		if !ok {
			return
		}
		name, orgID = d.Name, d.OrgID
	} else {
		typed := strings.TrimSpace(clip(r.PostFormValue("domain"), 300))
		a, err := dnsname.Parse(typed, dnsname.Domain)
		if err != nil {
			data := &checksData{Name: typed, CanWrite: true, Error: err.Error()}
			pg.render(w, r, p, http.StatusUnprocessableEntity, "checks", "checks", "Check a domain", data, "The domain was not checked.")
			return
		}
		name = a
		// A domain hosted in the scope keeps its checks with its
		// organization.
		if d, err := p.Tenant.Domain(ctx, a); err == nil {
			orgID = d.OrgID
		}
	}
	if err := pg.deps.AllowCheck(orgID); err != nil {
		var le *api.CheckLimitError
		if errors.As(err, &le) {
			w.Header().Set("Retry-After", strconv.FormatInt(int64((le.Wait+time.Second-1)/time.Second), 10))
		}
		msg := "The check of " + name + " was not run: " + err.Error() + "."
		data := &checksData{Name: name, CanWrite: true, Error: msg}
		pg.render(w, r, p, http.StatusTooManyRequests, "checks", "checks", "Check a domain", data, msg)
		return
	}
	rep, err := pg.deps.Checker.Check(ctx, name)
	if err != nil {
		msg := "The check of " + name + " failed: " + err.Error()
		if errors.Is(err, check.ErrDNSUnavailable) {
			msg += ". Try again shortly."
		}
		data := &checksData{Name: name, CanWrite: true, Error: msg}
		pg.render(w, r, p, http.StatusBadGateway, "checks", "checks", "Check a domain", data, msg)
		return
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		pg.fail(w, r, p, http.StatusInternalServerError, err.Error())
		return
	}
	rec := &store.CheckRecord{OrgID: orgID, Domain: name, CheckedAt: rep.CheckedAt.UTC(), Score: rep.Score, Grade: rep.Grade, Report: raw}
	if rec.CheckedAt.IsZero() {
		rec.CheckedAt = pg.now()
	}
	if err := p.Tenant.InsertCheck(ctx, rec); err != nil {
		pg.storeFail(w, r, p, "organization", err)
		return
	}
	pg.s.log.Info("dashboard: domain checked", "domain", name, "grade", rep.Grade, "who", p.Name())
	seeOther(w, r, "/checks/"+itoa(rec.ID), "")
}

func (pg *pages) checkPage(w http.ResponseWriter, r *http.Request, p *auth.Principal) {
	id, ok := pg.pathID(w, r, p, "id", "such check")
	if !ok {
		return
	}
	c, err := p.Tenant.Check(r.Context(), id)
	if err != nil {
		pg.storeFail(w, r, p, "such check", err)
		return
	}
	data := &checksData{Name: c.Domain, Latest: newCheckView(c), CanWrite: p.Can(auth.PermWrite)}
	if d, err := p.Tenant.Domain(r.Context(), c.Domain); err == nil {
		data.Domain = d
	}
	pg.render(w, r, p, http.StatusOK, "check", "checks", "Check of "+c.Domain, data)
}
